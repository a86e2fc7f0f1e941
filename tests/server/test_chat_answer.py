"""Engine events to chat deltas and answers, through the real harmony parser."""

from __future__ import annotations

import json

import pytest

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.engine.types import GenerationEvent, TokenLogprob, Usage
from mlx_gen.server.chat_answer import ChatAnswer

from .helpers import script_ids

THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>think hard<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello there<|return|>"
)
TOOL_CALL = (
    "<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{"city":"Paris"}<|call|>'
)
# A model that ends its first call with <|end|>, where <|call|> belongs, goes on.
TWO_CALLS = TOOL_CALL.replace(
    "<|call|>", "<|end|><|start|>assistant"
) + TOOL_CALL.replace("Paris", "Rome")


def events_of(ids: list[int], index: int = 0, reason: str | None = "stop"):
    """One event per token; the last one finishes the choice, unless no
    `reason` is given (the engine goes on)."""
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
            if last and reason
            else None,
        )


def answer(harmony, tiny_tokenizer, n=1, top_logprobs=None, **kw) -> ChatAnswer:
    ended = kw.pop("ended", [])
    return ChatAnswer(
        "chatcmpl-1", "tiny", n, harmony.parser, decoder_for(tiny_tokenizer),
        ended.append, top_logprobs, include_usage=True, **kw,
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


def fed(ans: ChatAnswer, events) -> list[dict]:
    return [c for e in events for c in ans.feed(e)]


def engine_end(reason: str, completion_tokens: int, index: int = 0):
    """The last engine event of a choice: no new token, its usage."""
    return GenerationEvent(
        "r", index, [], "", finish_reason=reason, usage=Usage(11, completion_tokens)
    )


def test_a_stop_string_ends_the_content_and_frees_the_engine_row(
    harmony, tiny_tokenizer
):
    ended: list[int] = []
    ans = answer(harmony, tiny_tokenizer, stops=["there"], ended=ended)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    chunks = fed(ans, events_of(ids[:-1], reason=None))
    assert ended == [0]
    assert "".join(d.get("content", "") for d in deltas(chunks)) == "Hello "
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not ans.done
    # The abort asked for ends the engine's sequence: no failure, usage counts.
    assert ans.feed(engine_end("abort", len(ids) + 2)) == []
    assert ans.done and ans.failure is None
    assert ans.response()["usage"]["completion_tokens"] == len(ids) + 2
    choice = ans.response()["choices"][0]
    assert choice["message"]["content"] == "Hello "
    assert choice["message"]["reasoning"] == "think hard"
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "stop", ["hard", "final", "analysis", "<|start|>", "assistant"]
)
def test_stop_strings_skip_reasoning_and_headers(harmony, tiny_tokenizer, stop):
    ended: list[int] = []
    ans = answer(harmony, tiny_tokenizer, stops=[stop], ended=ended)
    fed(ans, events_of(script_ids(tiny_tokenizer, THINK_THEN_ANSWER)))
    choice = ans.response()["choices"][0]
    assert choice["message"]["content"] == "Hello there"
    assert choice["finish_reason"] == "stop" and ended == []


@pytest.mark.parametrize("stop", ["Paris", "get_weather", "json"])
def test_stop_strings_skip_tool_calls(harmony, tiny_tokenizer, stop):
    ans = answer(harmony, tiny_tokenizer, stops=[stop])
    fed(ans, events_of(script_ids(tiny_tokenizer, TOOL_CALL)))
    choice = ans.response()["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["arguments"] == '{"city":"Paris"}'
    assert choice["finish_reason"] == "tool_calls"


def test_text_that_may_start_a_stop_string_waits_for_the_next_tokens(
    harmony, tiny_tokenizer
):
    final = "<|channel|>final<|message|>"
    stop = "there"
    ids = script_ids(tiny_tokenizer, final + "Hello th thorn thereafter")
    ans = answer(harmony, tiny_tokenizer, stops=[stop])
    streamed = [d.get("content", "") for d in deltas(fed(ans, events_of(ids)))]
    assert "".join(streamed) == "Hello th thorn "
    # No delta ever showed a piece of the stop string that then matched.
    shown = ""
    for piece in streamed:
        shown += piece
        assert not shown.endswith(("t", "th", "the", "ther"))


def test_a_stop_string_split_over_tokens_that_never_completes_is_content(
    harmony, tiny_tokenizer
):
    ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>Hello the")
    ans = answer(harmony, tiny_tokenizer, stops=["there"])
    chunks = fed(ans, events_of(ids, reason="length"))
    assert "".join(d.get("content", "") for d in deltas(chunks)) == "Hello the"
    assert ans.response()["choices"][0]["finish_reason"] == "length"


def test_each_choice_ends_on_its_own(harmony, tiny_tokenizer):
    ended: list[int] = []
    ans = answer(harmony, tiny_tokenizer, n=2, stops=["there"], ended=ended)
    ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    fed(ans, events_of(ids[:-1], index=1, reason=None))
    assert ended == [1]
    fed(ans, [engine_end("abort", len(ids), index=1)])
    other = script_ids(tiny_tokenizer, "<|channel|>final<|message|>Bye<|return|>")
    fed(ans, events_of(other, index=0))
    assert ended == [1] and ans.done
    whole = ans.response()
    assert [c["message"]["content"] for c in whole["choices"]] == ["Bye", "Hello "]
    assert whole["usage"]["completion_tokens"] == len(ids) + len(other)


def test_with_one_call_the_turn_ends_after_the_first_complete_call(
    harmony, tiny_tokenizer
):
    ids = script_ids(tiny_tokenizer, TWO_CALLS)
    for one_call, count in ((True, 1), (False, 2)):
        ended: list[int] = []
        ans = answer(harmony, tiny_tokenizer, one_call=one_call, ended=ended)
        chunks = fed(ans, events_of(ids))
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        calls = ans.response()["choices"][0]["message"]["tool_calls"]
        assert len(calls) == count
        assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
        assert ended == ([0] if one_call else [])


def test_template_models_stop_on_the_content_not_the_thinking(tmp_path):
    from chat.helpers import write_chatml_tokenizer
    from mlx_lm.tokenizer_utils import load

    from mlx_gen.chat import format_for

    tokenizer = load(write_chatml_tokenizer(tmp_path))  # the prompt opens <think>
    chatml = format_for(tokenizer)
    ids = tokenizer.encode(
        "Should I stop? No.</think>\n\nGoing on, then I stop here.<|im_end|>",
        add_special_tokens=False,
    )
    ended: list[int] = []
    ans = answer(chatml, tokenizer, stops=["stop"], ended=ended)
    fed(ans, events_of(ids, reason=None))
    assert ended == [0]
    choice = ans.response()["choices"][0]
    assert choice["message"]["reasoning"] == "Should I stop? No."
    assert choice["message"]["content"] == "Going on, then I "
    assert choice["finish_reason"] == "stop"
