"""Per-row grammars inside the batch: each choice follows its own matcher,
a complete grammar ends its row, a grammar that cannot compile is refused."""

from __future__ import annotations

import asyncio
import json

import pytest

from mlx_gen.chat.harmony_grammar import json_schema_lark
from mlx_gen.engine.constraints import InvalidGrammar, compile_grammar, lark_grammar
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, run

PAIR = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 999},
        "b": {"enum": ["x", "y", "z"]},
    },
    "required": ["a", "b"],
    "additionalProperties": False,
}


def json_constraint(tokenizer, schema: dict):
    lark = f"start: {json_schema_lark(schema)}\n"
    return compile_grammar(lark_grammar(lark), tokenizer)


def test_each_choice_follows_its_own_matcher_and_stops_when_complete(
    make_engine, tokenizer
):
    # The tokenizer's end tokens stop rows: a complete grammar allows only them.
    engine = make_engine(default_stop_token_ids=None)
    request = GenerationRequest(
        tokenizer.encode("numbers"),
        SamplingParams(max_tokens=40, temperature=1.0, seed=3, n=4),
        constraint=json_constraint(tokenizer, PAIR),
    )
    result = run(collect(engine, request))
    answers = []
    for index in range(4):
        assert result.final[index].finish_reason == "stop"
        answer = json.loads(result.text[index])
        assert 0 <= answer["a"] <= 999 and answer["b"] in ("x", "y", "z")
        # Compact: nothing but the JSON's own characters.
        assert result.text[index] == json.dumps(answer, separators=(",", ":"))
        answers.append(result.text[index])
    assert len(set(answers)) > 1  # four matchers, four draws


def test_unconstrained_rows_are_untouched_by_a_constrained_neighbour(
    make_engine, tokenizer
):
    engine = make_engine(default_stop_token_ids=None)
    prompts = [tokenizer.encode(f"story {i}") for i in range(3)]

    def greedy(prompt: list[int]) -> GenerationRequest:
        return GenerationRequest(prompt, SamplingParams(max_tokens=20, temperature=0))

    async def together():
        constrained = GenerationRequest(
            tokenizer.encode("json"),
            SamplingParams(max_tokens=40, temperature=1.0, seed=1),
            constraint=json_constraint(tokenizer, PAIR),
        )
        return await asyncio.gather(
            *(collect(engine, greedy(p)) for p in prompts), collect(engine, constrained)
        )

    alone = [run(collect(engine, greedy(p))).tokens[0] for p in prompts]
    mixed = run(together())
    assert [r.tokens[0] for r in mixed[:3]] == alone
    assert json.loads(mixed[3].text[0])["b"] in ("x", "y", "z")


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "objekt"}, "Invalid type: objekt"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"$ref": "#/$defs/nowhere"}, "/$defs/nowhere"),
    ],
)
def test_a_grammar_that_cannot_compile_is_refused_by_name(tokenizer, schema, words):
    with pytest.raises(InvalidGrammar) as error:
        json_constraint(tokenizer, schema)
    assert words in str(error.value)
    assert "<state>" not in str(error.value)


def test_a_speculating_batch_holds_back_while_a_constrained_row_runs(
    make_engine, tokenizer
):
    """A constrained row's mask needs the token before it: the batch does
    not speculate while it runs, and everyone's output is as without (with
    the hold-back removed, the constrained row's output differs)."""
    plain = make_engine(default_stop_token_ids=None)
    engine = make_engine(
        default_stop_token_ids=None, speculative="ngram", speculative_max_batch=8
    )
    prompt = tokenizer.encode("story 7")

    async def together(engine):
        constrained = GenerationRequest(
            tokenizer.encode("json"),
            SamplingParams(max_tokens=40, temperature=1.0, seed=1),
            constraint=json_constraint(tokenizer, PAIR),
        )
        greedy = GenerationRequest(prompt, SamplingParams(max_tokens=60, temperature=0))
        return await asyncio.gather(
            collect(engine, constrained), collect(engine, greedy)
        )

    want = run(together(plain))
    got = run(together(engine))
    assert [r.tokens for r in got] == [r.tokens for r in want]
    json.loads(got[0].text[0])
