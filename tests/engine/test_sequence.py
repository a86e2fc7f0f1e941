"""Stop strings, stop tokens and length: what a choice emits and when it ends."""

from __future__ import annotations

import pytest

from mlx_gen.engine.stop_strings import StopStrings
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, forcing, run


def write(tokenizer, text: str, prompt: list[int], **params) -> GenerationRequest:
    """A request whose model is forced to write `text`."""
    tokens = tokenizer.encode(text, add_special_tokens=False)
    sampling = SamplingParams(**{"max_tokens": len(tokens), "temperature": 0, **params})
    return GenerationRequest(
        prompt, sampling, logits_processors=[forcing(len(prompt), tokens)]
    )


@pytest.mark.parametrize(
    ("pieces", "stops", "emitted", "matched"),
    [
        (["The ans", "wer is ST", "OP now"], ["STOP"], "The answer is ", True),
        (["a S", "T", " b"], ["STOP"], "a ST b", False),
        (["xx", "<|e", "nd|>yy"], ["never", "<|end|>"], "xx", True),
        (["abcab", "cabd"], ["abcabd"], "abc", True),
        (["no stops here"], [], "no stops here", False),
    ],
)
def test_stop_strings_hold_back_only_what_may_start_one(
    pieces, stops, emitted, matched
):
    stop = StopStrings(stops)
    out, hit = "", False
    for piece in pieces:
        text, hit = stop.feed(piece)
        out += text
        if hit:
            break
    if not hit:
        out += stop.flush()
    assert (out, hit) == (emitted, matched)


def test_a_stop_string_split_across_tokens_is_never_emitted(make_engine, tokenizer):
    engine = make_engine()
    text = "The answer is forty STOP and more"
    assert len(tokenizer.encode(" STOP", add_special_tokens=False)) > 1
    request = write(tokenizer, text, [5, 6, 7], stop=["STOP", "never"])
    out = run(collect(engine, request))
    assert out.text[0] == "The answer is forty "
    assert out.final[0].finish_reason == "stop"
    # Every delta was final: the stop string's first letters were held back.
    assert all("S" not in e.text for e in out.events)


def test_a_stop_string_prefix_that_does_not_complete_is_emitted(make_engine, tokenizer):
    engine = make_engine()
    request = write(tokenizer, "say ST and STO then", [5], stop=["STOP"])
    out = run(collect(engine, request))
    assert out.text[0] == "say ST and STO then"
    assert out.final[0].finish_reason == "length"


def test_stop_token_ends_the_choice_without_its_text(make_engine, tokenizer):
    engine = make_engine()
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    request = write(tokenizer, "hello<|end|> world", [9, 9], stop_token_ids=[end])
    out = run(collect(engine, request))
    assert out.text[0] == "hello"
    assert out.tokens[0][-1] == end
    final = out.final[0]
    assert final.finish_reason == "stop"
    assert final.usage.completion_tokens == len(out.tokens[0])


def test_default_stop_ids_come_from_the_config(make_engine, tokenizer):
    ret = tokenizer.convert_tokens_to_ids("<|return|>")
    engine = make_engine(default_stop_token_ids=[ret])
    out = run(collect(engine, write(tokenizer, "done<|return|> more", [3])))
    assert (out.text[0], out.final[0].finish_reason) == ("done", "stop")


def test_text_is_utf8_safe_and_complete(make_engine, tokenizer):
    engine = make_engine()
    text = "héllo wörld 你好 🙂!"
    out = run(collect(engine, write(tokenizer, text, [1, 2])))
    assert out.text[0] == text
    assert all("\ufffd" not in e.text for e in out.events)
    final = out.final[0]
    assert final.finish_reason == "length"
    assert final.usage.completion_tokens == len(
        tokenizer.encode(text, add_special_tokens=False)
    )
    assert 0 <= final.timings.queue_wait <= final.timings.time_to_first_token
    assert final.timings.time_to_first_token <= final.timings.total
