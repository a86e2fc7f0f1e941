"""Engine events to Anthropic's message and stream events, through the real
harmony parser."""

from __future__ import annotations

import json

from mlx_gen.chat.base import (
    ContentDelta,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.answers.message_blocks import ContentBlocks, signature_of
from mlx_gen.server.answers.messages import MessagesAnswer

from ..helpers import script_ids
from .test_chat import THINK_THEN_ANSWER, TOOL_CALL, TWO_CALLS, events_of

# The block field each delta type adds to.
FIELDS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
}


def answer(harmony, tiny_tokenizer, **kw) -> MessagesAnswer:
    ended = kw.pop("ended", [])
    kw.setdefault("stream", True)
    return MessagesAnswer(
        "msg-abc", "tiny", 1, harmony.parser, decoder_for(tiny_tokenizer),
        ended.append, None, prompt_tokens=11, **kw,
    )  # fmt: skip


def test_the_stream_builds_the_whole_message(harmony, tiny_tokenizer):
    streamed = answer(harmony, tiny_tokenizer)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    events = streamed.start_chunks()
    for event in events_of(ids):
        events += streamed.feed(event)
    whole = answer(harmony, tiny_tokenizer, stream=False)
    assert all(whole.feed(e) == [] for e in events_of(ids))
    message = whole.response()
    assert message == streamed.response()
    assert message["id"] == "msg_abc"
    # The SDK's own accumulation, done by hand: start, deltas, stop.
    built = events[0]["message"]
    assert built["content"] == [] and built["usage"]["input_tokens"] == 11
    assert events[1] == {"type": "ping"}
    for event in events[2:]:
        if event["type"] == "content_block_start":
            built["content"].append(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = built["content"][event["index"]], event["delta"]
            field = FIELDS[delta["type"]]
            block[field] += delta[field]
        elif event["type"] == "message_delta":
            built |= event["delta"] | {"usage": event["usage"]}
    assert built == message
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]


def test_usage_counts_cache_reads_apart(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer, stream=False)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    for event in events_of(ids):
        ans.feed(event)
    assert ans.response()["usage"] == {
        "input_tokens": 8,
        "output_tokens": len(ids),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
    }


def test_a_stop_sequence_is_named(harmony, tiny_tokenizer):
    ended: list[int] = []
    ans = answer(harmony, tiny_tokenizer, stops=["xyz", "lo th"], ended=ended)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    for event in events_of(ids):
        ans.feed(event)
    message = ans.response()
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "lo th"
    assert message["content"][-1]["text"] == "Hel"
    assert ended == [0]  # the engine's row is freed at the stop


def test_one_call_ends_the_turn_at_its_first_tool_use(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer, stream=False, one_call=True)
    for event in events_of(script_ids(tiny_tokenizer, TWO_CALLS)):
        ans.feed(event)
    message = ans.response()
    assert message["stop_reason"] == "tool_use"
    assert [b["input"] for b in message["content"]] == [{"city": "Paris"}]
    assert message["content"][0]["id"].startswith("toolu_")


def test_the_turn_ending_at_max_tokens(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer, stream=False)
    ids = script_ids(tiny_tokenizer, TOOL_CALL)[:-3]
    for event in events_of(ids, reason="length"):
        ans.feed(event)
    message = ans.response()
    assert message["stop_reason"] == "max_tokens"
    # Arguments cut short are no JSON object: the input is empty.
    assert message["content"][-1]["input"] == {}


def test_blocks_follow_the_order_the_model_wrote_them():
    blocks = ContentBlocks()
    events = []
    for parsed in [
        ReasoningDelta("a"),
        ReasoningDelta("b"),
        ContentDelta("preamble"),
        ToolCallStart(0, "call_x1", "f"),
        ToolCallArgumentsDelta(0, '{"k":'),
        ToolCallArgumentsDelta(0, "[1]}"),
        ReasoningDelta("c"),
    ]:
        events += blocks.feed(parsed)
    events += blocks.close()
    assert blocks.blocks == [
        {"type": "thinking", "thinking": "ab", "signature": signature_of("ab")},
        {"type": "text", "text": "preamble"},
        {"type": "tool_use", "id": "toolu_x1", "name": "f", "input": {"k": [1]}},
        {"type": "thinking", "thinking": "c", "signature": signature_of("c")},
    ]
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3]
    partial = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta"
        and e["delta"]["type"] == "input_json_delta"
    ]
    assert json.loads("".join(partial)) == {"k": [1]}
