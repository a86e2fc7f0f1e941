"""Structured output (issue 14): decode speed of rows that follow a JSON
schema against unconstrained rows, on the bench model in one run, the two
alternating round by round on the same prompts; and schema compile time.

The constrained rows follow an object whose one string is at least 2000
characters long, so that no row completes its grammar within the run: every
step of every row computes a mask (inside a JSON string, the common case of
a long structured answer). The engine has no stop tokens, so both kinds of
rows generate exactly their max_tokens (checked).
"""

from __future__ import annotations

import time

import pytest
from engine_runs import engine_batch, make_prompts
from timing import paired_ratios, run_rounds, spread

from mlx_gen.chat.harmony_grammar import json_schema_lark
from mlx_gen.engine.constraints import MASK_CLOCK, compile_grammar, lark_grammar

PROMPT_TOKENS = 128
DECODE_TOKENS = 64
TARGET_BATCH_32 = 0.9  # constrained / unconstrained decode at 32 rows
LONG_TEXT = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 2000}},
    "required": ["text"],
}
# A schema of every common kind, for the compile time.
RECORD = {
    "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        "kind": {"enum": ["a", "b", "c"]},
        "where": {"$ref": "#/$defs/point"},
        "id": {
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[a-z]+$"}]
        },
    },
    "required": ["name", "age"],
}


def grammar(schema: dict) -> str:
    return lark_grammar(f"start: {json_schema_lark(schema)}\n")


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_constrained_decode(benchmark, engine, bench_model, rng, rounds, record, batch):
    _, tokenizer = bench_model
    constraint = compile_grammar(grammar(LONG_TEXT), tokenizer)
    # Each system its own prompts: the engine's prefix cache would serve the
    # second a prompt the first just ran.
    prompts = {
        name: [
            make_prompts(tokenizer, batch, PROMPT_TOKENS, rng)
            for _ in range(rounds + 1)
        ]
        for name in ("constrained", "unconstrained")
    }
    mask_ms: list[float] = []  # engine time in masks, per constrained step

    def constrained(r: int):
        seconds, steps = MASK_CLOCK.seconds, engine.stats().steps_total
        run = engine_batch(engine, prompts["constrained"][r], DECODE_TOKENS, constraint)
        steps = engine.stats().steps_total - steps
        mask_ms.append((MASK_CLOCK.seconds - seconds) / steps * 1e3)
        return run

    systems = {
        "constrained": constrained,
        "unconstrained": lambda r: engine_batch(
            engine, prompts["unconstrained"][r], DECODE_TOKENS
        ),
    }
    got = run_rounds(benchmark, systems, rounds)
    steady = {k: [a.steady_decode()[0] for a in v] for k, v in got.items()}
    ratio = spread(paired_ratios(steady["constrained"], steady["unconstrained"]))
    figures = dict(
        batch=batch,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=DECODE_TOKENS,
        rounds=rounds,
        constrained_decode_tok_s=spread(steady["constrained"]),
        unconstrained_decode_tok_s=spread(steady["unconstrained"]),
        ratio=ratio,
        mask_ms_per_step=spread(mask_ms[1:]),  # not round 0's
    )
    if batch == 32:
        figures.update(
            target=f">= {TARGET_BATCH_32}", met=ratio["median"] >= TARGET_BATCH_32
        )
    record(**figures)


def test_schema_compile_time(benchmark, bench_model, record):
    _, tokenizer = bench_model
    compile_grammar(grammar(RECORD), tokenizer)  # the tokenizer, built once

    titles = iter(range(1 << 30))

    def compile_once() -> float:
        # A new title each time: compile_grammar caches what it compiled.
        schema = {**RECORD, "title": f"record {next(titles)}"}
        start = time.perf_counter()
        compile_grammar(grammar(schema), tokenizer)
        return time.perf_counter() - start

    times = [compile_once() for _ in range(20)]
    benchmark.pedantic(compile_once, rounds=1, iterations=1)
    record(schema_properties=len(RECORD["properties"]), compile_s=spread(times))
