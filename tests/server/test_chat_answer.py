"""Engine events to chat deltas and answers, through the real harmony parser."""

from __future__ import annotations

import json

from mlx_gen.engine.types import GenerationEvent, TokenLogprob, Usage
from mlx_gen.server.chat_answer import ChatAnswer
from mlx_gen.server.chat_choices import StopTrimmer
from mlx_gen.server.outputs import TokenTexts

from .helpers import script_ids

THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>think hard<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello there<|return|>"
)
TOOL_CALL = (
    "<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{"city":"Paris"}<|call|>'
)


def events_of(ids: list[int], index: int = 0, reason: str = "stop"):
    """One event per token; the last one finishes the choice."""
    for i, token in enumerate(ids):
        last = i == len(ids) - 1
        yield GenerationEvent(
            request_id="r",
            index=index,
            token_ids=[token],
            text="",
            logprobs=[TokenLogprob(token, -0.5, [(token, -0.5), (1, -2.0)])],
            finish_reason=reason if last else None,
            usage=Usage(prompt_tokens=11, completion_tokens=len(ids), cached_tokens=3)
            if last
            else None,
        )


def answer(harmony, tiny_tokenizer, n=1, top_logprobs=None) -> ChatAnswer:
    return ChatAnswer(
        "chatcmpl-1", "tiny", n, harmony.parser, TokenTexts(tiny_tokenizer),
        top_logprobs, include_usage=True,
    )  # fmt: skip


def deltas(chunks: list[dict]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in chunks]


def test_reasoning_and_content_stream_and_agree_with_the_whole(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer)
    start = ans.start_chunks()
    assert deltas(start) == [{"role": "assistant", "content": ""}]
    chunks = [c for e in events_of(script_ids(tiny_tokenizer, THINK_THEN_ANSWER))
              for c in ans.feed(e)]  # fmt: skip
    streamed = deltas(chunks)
    assert "".join(d.get("reasoning", "") for d in streamed) == "think hard"
    assert "".join(d.get("reasoning_content", "") for d in streamed) == "think hard"
    assert "".join(d.get("content", "") for d in streamed) == "Hello there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    whole = ans.response()
    message = whole["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Hello there",
        "reasoning": "think hard",
        "reasoning_content": "think hard",
    }
    usage = whole["usage"]
    assert usage["prompt_tokens"] == 11
    assert usage["prompt_tokens_details"] == {"cached_tokens": 3}
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert ans.usage_chunk()["choices"] == []


def test_tool_call_streams_name_then_arguments(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer)
    chunks = [c for e in events_of(script_ids(tiny_tokenizer, TOOL_CALL))
              for c in ans.feed(e)]  # fmt: skip
    calls = [d["tool_calls"][0] for d in deltas(chunks) if "tool_calls" in d]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    args = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(args) == {"city": "Paris"}
    assert all(c["index"] == 0 for c in calls)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    choice = ans.response()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }


def test_choices_interleave_and_usage_sums(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer, n=2)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    for a, b in zip(events_of(ids, 0), events_of(ids, 1, "length"), strict=True):
        ans.feed(a)
        ans.feed(b)
    assert ans.done
    whole = ans.response()
    assert [c["finish_reason"] for c in whole["choices"]] == ["stop", "length"]
    assert whole["usage"]["completion_tokens"] == 2 * len(ids)
    assert whole["usage"]["prompt_tokens"] == 11


def test_logprobs_ride_on_the_chunks(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer, top_logprobs=1)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    chunks = [c for e in events_of(ids) for c in ans.feed(e)]
    entries = [e for c in chunks if c["choices"][0]["logprobs"]
               for e in c["choices"][0]["logprobs"]["content"]]  # fmt: skip
    assert len(entries) == len(ids)
    assert entries[0]["token"] == "<|channel|>"
    assert entries[0]["bytes"] == list(b"<|channel|>")
    assert len(entries[0]["top_logprobs"]) == 1
    assert len(ans.response()["choices"][0]["logprobs"]["content"]) == len(ids)


def test_an_engine_error_becomes_the_answers_failure(harmony, tiny_tokenizer):
    ans = answer(harmony, tiny_tokenizer)
    failed = GenerationEvent("r", 0, [], "", finish_reason="error", error="boom")
    assert ans.feed(failed) == []
    assert ans.failure is not None and ans.failure.status == 500
    assert "boom" in ans.failure.message


def test_stop_strings_end_the_content_and_are_not_part_of_it():
    trim = StopTrimmer(["END", "xyz"])
    out = [trim.feed(t) for t in ["Hel", "lo E", "N", "D and more", "ignored"]]
    assert out == ["Hel", "lo ", "", "", ""]
    assert trim.stopped and trim.flush() == ""
    held = StopTrimmer(["END"])
    assert held.feed("say E") == "say "
    assert held.flush() == "E"  # never completed: it was content after all
    assert StopTrimmer([]).feed("END") == "END"
