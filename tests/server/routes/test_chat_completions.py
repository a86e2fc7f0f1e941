"""POST /v1/chat/completions end to end: the real server, the official SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from ..conftest import MODEL
from ..helpers import script_ids

THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>think hard<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello there<|return|>"
)
TOOL_CALL = (
    "<|channel|>analysis<|message|>need weather<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_weather "
    '<|constrain|>json<|message|>{"city":"Paris"}<|call|>'
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
HI = [{"role": "user", "content": "Hi"}]


def prompt_count(server, **body) -> int:
    response = httpx.post(server.url("/tokenize"), json={"model": MODEL, **body})
    return response.json()["count"]


def test_plain_answer_has_the_openai_shape(server, client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_completion_tokens=8, temperature=0
    )
    assert len(raw.headers["x-request-id"]) >= 16
    reply = raw.parse()
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.role == "assistant"
    usage = reply.usage
    assert usage.prompt_tokens == prompt_count(server, messages=HI)
    assert 1 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_repeated_prompt_reports_its_cached_tokens(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    # Words no other test sends: only the shared system prompt can be cached.
    messages = [{"role": "user", "content": "cached " * 64 + "zebra quartz"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=64
    ).usage
    again = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=64
    ).usage
    assert again.prompt_tokens == first.prompt_tokens
    cached_before = first.prompt_tokens_details.cached_tokens
    cached_now = again.prompt_tokens_details.cached_tokens
    # The whole prompt but the user's words was new the first time.
    assert cached_before < first.prompt_tokens - 64
    assert cached_before + 64 <= cached_now < again.prompt_tokens


def test_reasoning_and_content_are_separated(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.chat.completions.create(
        model=MODEL, messages=HI, reasoning_effort="high", max_tokens=64
    )
    message = reply.choices[0].message
    assert message.content == "Hello there"
    assert message.reasoning == "think hard"
    assert message.reasoning_content == "think hard"
    assert reply.choices[0].finish_reason == "stop"
    reasoning = reply.usage.completion_tokens_details.reasoning_tokens
    assert 0 < reasoning < reply.usage.completion_tokens
    assert reply.usage.completion_tokens == len(script.ids)


def test_tool_call_round_trip(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        parallel_tool_calls=False,
        max_tokens=64,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert choice.message.reasoning == "need weather"

    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    follow_up = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
        tools=[WEATHER_TOOL],
        max_tokens=64,
    )
    assert follow_up.choices[0].message.content == "Hello there"


def test_streaming_deltas_and_usage(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Hello there"
    assert "".join(getattr(d, "reasoning", None) or "" for d in deltas) == "think hard"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage.completion_tokens == len(script.ids)
    assert usage_chunk.usage.completion_tokens_details.reasoning_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_tool_call_arguments_arrive_in_pieces(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    stream = client.chat.completions.create(
        model=MODEL, messages=HI, tools=[WEATHER_TOOL], max_tokens=64, stream=True
    )
    calls = [
        call
        for chunk in stream
        for call in (chunk.choices[0].delta.tool_calls or [])
        if chunk.choices
    ]
    assert calls[0].id and calls[0].function.name == "get_weather"
    assert len(calls) > 2  # the arguments came token by token
    arguments = "".join(c.function.arguments or "" for c in calls)
    assert json.loads(arguments) == {"city": "Paris"}


def test_reasoning_effort_reaches_the_prompt(server, client):
    high = httpx.post(
        server.url("/tokenize"),
        json={"model": MODEL, "messages": HI, "reasoning_effort": "high"},
    ).json()
    assert "Reasoning: high" in high["prompt"]
    default = httpx.post(
        server.url("/tokenize"), json={"model": MODEL, "messages": HI}
    ).json()
    assert "Reasoning: medium" in default["prompt"]
    reply = client.chat.completions.create(
        model=MODEL,
        messages=HI,
        max_tokens=1,
        extra_body={"reasoning": {"effort": "high"}},
    )
    assert reply.usage.prompt_tokens == high["count"]


def test_n_choices(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.chat.completions.create(model=MODEL, messages=HI, n=3, max_tokens=64)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content == "Hello there" for c in reply.choices)
    assert reply.usage.completion_tokens == 3 * len(script.ids)


def test_seed_makes_sampling_repeatable(client):
    def sample() -> str:
        reply = client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=12, temperature=1.0, seed=1234
        )
        return reply.choices[0].message.content

    assert sample() == sample()


def test_logprobs_cover_every_generated_token(client):
    reply = client.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=6, logprobs=True, top_logprobs=2
    )
    entries = reply.choices[0].logprobs.content
    assert len(entries) == reply.usage.completion_tokens
    assert all(e.logprob <= 0 and len(e.top_logprobs) == 2 for e in entries)


def test_errors_arrive_as_sdk_exceptions(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=HI)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="/etc/passwd", messages=HI)
    with pytest.raises(openai.BadRequestError) as schema:
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "objekt"}},
            },
        )
    assert schema.value.param == "response_format"
    assert "objekt" in schema.value.message
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=5000)
    assert too_long.value.code == "context_length_exceeded"
    assert "4096" in too_long.value.message and "5000" in too_long.value.message


def test_characters_split_across_tokens_arrive_whole(client, script, tiny_tokenizer):
    reasoning, content = "Größe 😀", " 你好 🙂!"
    script.ids = script_ids(
        tiny_tokenizer,
        f"<|channel|>analysis<|message|>{reasoning}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{content}<|return|>",
    )
    emoji = tiny_tokenizer.encode("🙂", add_special_tokens=False)
    assert len(emoji) > 1, "precondition: a character spans tokens"
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=64, stream=True, logprobs=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    contents = [d.content or "" for d in deltas]
    reasonings = [getattr(d, "reasoning", None) or "" for d in deltas]
    assert ("".join(reasonings), "".join(contents)) == (reasoning, content)
    assert not any("\ufffd" in text for text in contents + reasonings)
    # Each token's logprob entry carries its own bytes, part of a character or not.
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs
               for e in c.choices[0].logprobs.content]  # fmt: skip
    assert len(entries) == len(script.ids)
    raw = b"".join(bytes(e.bytes) for e in entries)
    assert content.encode() in raw and reasoning.encode() in raw
