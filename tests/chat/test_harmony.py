"""The harmony format as a whole: render → generate → parse, through a real model."""

from __future__ import annotations

import asyncio
from typing import Any

import mlx.core as mx
import pytest

from mlx_gen.chat import HarmonyFormat, collect
from mlx_gen.engine import EngineConfig, LLMEngine
from mlx_gen.engine.types import GenerationRequest, SamplingParams

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = {"role": "user", "content": "Weather in Oslo and Rome?"}


def completion_ids(harmony: HarmonyFormat, assistant: dict) -> list[int]:
    """The ids the model would have generated for this assistant turn."""
    prompt = harmony.render([QUESTION], tools=[WEATHER_TOOL]).token_ids
    whole = harmony.render(
        [QUESTION, assistant], tools=[WEATHER_TOOL], add_generation_prompt=False
    ).token_ids
    assert whole[: len(prompt)] == prompt
    return whole[len(prompt) :]


def test_round_trip_of_a_tool_calling_turn(harmony: HarmonyFormat) -> None:
    assistant = {
        "role": "assistant",
        "reasoning": "Two cities, two calls. Größe: 😀",
        "content": "Let me check both cities.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    }
    answer = harmony.parse_all(completion_ids(harmony, assistant))
    assert answer.reasoning == assistant["reasoning"]
    assert answer.content == assistant["content"]
    assert [c["function"] for c in answer.tool_calls] == [
        c["function"] for c in assistant["tool_calls"]
    ]
    assert answer.reasoning_tokens > 0


def test_round_trip_of_a_final_answer(harmony: HarmonyFormat) -> None:
    assistant = {"role": "assistant", "content": "Cold in Oslo, warm in Rome."}
    answer = harmony.parse_all(completion_ids(harmony, assistant))
    assert (answer.reasoning, answer.content, answer.tool_calls) == (
        "",
        assistant["content"],
        [],
    )


def forcing(script: list[int], prompt_length: int):
    """A logits processor making the model emit `script`, one id per step."""

    def processor(tokens: mx.array, logits: mx.array) -> mx.array:
        step = min(tokens.shape[-1] - prompt_length, len(script) - 1)
        vocabulary = mx.arange(logits.shape[-1])
        return mx.where(vocabulary == script[step], 0.0, -mx.inf)[None]

    return processor


def generate_forced(
    tiny_model: tuple[Any, Any],
    harmony: HarmonyFormat,
    prompt: list[int],
    script: list[int],
) -> list[int]:
    """Token ids generated through mlx-gen's engine, forced to follow `script`.

    The engine stops only on the ids the format names (no tokenizer defaults),
    so the test sees harmony's own stopping rule at work.
    """
    sampling = SamplingParams(
        max_tokens=len(script) + 5,
        temperature=0.0,
        stop_token_ids=harmony.stop_token_ids,
    )
    request = GenerationRequest(
        prompt, sampling, logits_processors=[forcing(script, len(prompt))]
    )

    async def generate() -> list[int]:
        ids: list[int] = []
        async for event in engine.submit(request):
            ids += event.token_ids
        return ids

    config = EngineConfig(default_stop_token_ids=[], prefix_cache_bytes=0)
    engine = LLMEngine(*tiny_model, config)
    engine.start()
    with engine:
        return asyncio.run(generate())


@pytest.mark.parametrize(
    ("scripted", "reasoning", "content", "calls"),
    [
        (
            "<|channel|>analysis<|message|>Look it up.<|end|>"
            "<|start|>assistant<|channel|>commentary to=functions.get_weather "
            '<|constrain|>json<|message|>{"city":"Oslo"}<|call|>',
            "Look it up.",
            "",
            [{"name": "get_weather", "arguments": '{"city":"Oslo"}'}],
        ),
        (
            "<|channel|>analysis<|message|>Easy.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>Sunny, 20 °C.<|return|>",
            "Easy.",
            "Sunny, 20 °C.",
            [],
        ),
    ],
)
def test_parsing_what_the_model_generates(
    harmony: HarmonyFormat,
    tiny_model: tuple[Any, Any],
    script,
    scripted: str,
    reasoning: str,
    content: str,
    calls: list,
) -> None:
    prompt = harmony.render([QUESTION], tools=[WEATHER_TOOL]).token_ids
    expected = script(scripted)
    generated = generate_forced(
        tiny_model, harmony, prompt, expected + script("<|end|>x")
    )
    # Generation stopped on <|return|> / <|call|>, never on the <|end|> before.
    assert generated == expected

    parser = harmony.parser()
    events = []
    for token_id in generated:
        events += parser.feed([token_id])
    answer = collect(events + parser.finish(), parser.reasoning_tokens)
    assert (answer.reasoning, answer.content) == (reasoning, content)
    assert [c["function"] for c in answer.tool_calls] == calls
    assert answer.reasoning_tokens == len(script(scripted.split("<|start|>")[0]))
