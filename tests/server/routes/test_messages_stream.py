"""POST /v1/messages streamed: Anthropic's events, read by the official SDK."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from ..conftest import MODEL
from ..helpers import script_ids, sse_lines
from .test_chat_completions import THINK_THEN_ANSWER, TOOL_CALL
from .test_messages import ASK, WEATHER, prompt_of


def without_ids(message) -> dict:
    """A message's content: its ids differ from request to request, and the
    repeated prompt is found in the prefix cache the second time."""
    data = message.model_dump(exclude={"id"})
    usage = data.pop("usage")
    data["prompt"] = prompt_of(message.usage)
    data["output"] = usage["output_tokens"]
    for block in data["content"]:
        assert block.pop("id", "toolu_x").startswith("toolu_")
    return data


@pytest.mark.parametrize("forced", [THINK_THEN_ANSWER, TOOL_CALL])
def test_streamed_message_equals_the_whole_one(claude, script, tiny_tokenizer, forced):
    script.ids = script_ids(tiny_tokenizer, forced)
    args = dict(
        model=MODEL,
        messages=[{"role": "user", "content": ASK}],
        tools=[WEATHER],
        max_tokens=64,
    )
    whole = claude.messages.create(**args)
    with claude.messages.stream(**args) as stream:
        events = list(stream)
        streamed = stream.get_final_message()
    assert without_ids(streamed) == without_ids(whole)
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_start") == len(whole.content)
    assert kinds.count("content_block_stop") == len(whole.content)


def test_greedy_sampling_streams_what_it_answers_whole(claude):
    args = dict(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a story"}],
        max_tokens=24,
        # The SDK has dropped the sampling parameters; the API still takes them.
        extra_body={"temperature": 0},
    )
    whole = claude.messages.create(**args)
    with claude.messages.stream(**args) as stream:
        streamed = stream.get_final_message()
    assert without_ids(streamed) == without_ids(whole)
    assert whole.usage.output_tokens > 0


def test_the_event_lines_name_each_frame(server, script, tiny_tokenizer):
    """As Anthropic sends them: `event:` then `data:`, a ping, the signature
    before the thinking block stops, and no `[DONE]`."""
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": ASK}],
        "tools": [WEATHER],
        "max_tokens": 64,
        "stream": True,
    }
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "anything"}
    with httpx.stream(
        "POST", server.url("/v1/messages"), json=body, headers=headers
    ) as answer:
        assert answer.status_code == 200
        lines = [line for line in sse_lines(answer) if not line.startswith(":")]
    assert len(lines) % 2 == 0
    frames = []
    for event, data in zip(lines[::2], lines[1::2], strict=True):
        payload = json.loads(data.removeprefix("data: "))
        assert event == f"event: {payload['type']}"
        frames.append(payload)
    kinds = [f["type"] for f in frames]
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    deltas = [f["delta"]["type"] for f in frames if f["type"] == "content_block_delta"]
    assert deltas.index("signature_delta") < deltas.index("input_json_delta")
    thinking_stop = kinds.index("content_block_stop")
    assert frames[thinking_stop - 1]["delta"]["type"] == "signature_delta"
    arguments = "".join(
        f["delta"]["partial_json"]
        for f in frames
        if f["type"] == "content_block_delta"
        and f["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(arguments) == {"city": "Paris"}
    assert frames[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert frames[-2]["usage"]["output_tokens"] == len(script.ids)


def test_a_stream_cut_by_a_stop_sequence(claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    with claude.messages.stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        stop_sequences=["ere"],
        max_tokens=64,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello th"
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "ere"


def test_a_generation_failing_mid_stream_is_an_error_event(
    claude, script, tiny_tokenizer
):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    script.fail_after = 3
    with (
        pytest.raises(anthropic.APIStatusError) as failed,
        claude.messages.stream(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=50
        ) as stream,
    ):
        list(stream)
    assert failed.value.body["type"] == "error"
    assert failed.value.body["error"]["type"] == "api_error"
    assert "Generation failed" in failed.value.body["error"]["message"]
