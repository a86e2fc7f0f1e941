"""Incremental detokenization: the deltas add up to exactly the decoded text."""

from __future__ import annotations

import random

import pytest

from mlx_gen.engine.detokenizer import (
    ByteLevelDetokenizer,
    WindowDetokenizer,
    detokenizer_factory,
)


def stream(detokenizer, tokens: list[int]) -> list[str]:
    return [detokenizer.add(t) for t in tokens] + [detokenizer.flush()]


def test_the_harmony_tokenizer_gets_the_byte_level_detokenizer(tokenizer):
    assert isinstance(detokenizer_factory(tokenizer)(), ByteLevelDetokenizer)


@pytest.mark.parametrize("kind", ["byte-level", "window"])
def test_random_token_streams_match_decode(tokenizer, kind):
    make = detokenizer_factory(tokenizer)
    if kind == "window":
        make = lambda: WindowDetokenizer(tokenizer.decode)  # noqa: E731
    rng = random.Random(0)
    for _ in range(100):
        tokens = [rng.randrange(len(tokenizer)) for _ in range(rng.randrange(1, 30))]
        assert "".join(stream(make(), tokens)) == tokenizer.decode(tokens)


@pytest.mark.parametrize("kind", ["byte-level", "window"])
def test_a_split_character_waits_for_its_last_byte(tokenizer, kind):
    make = detokenizer_factory(tokenizer)
    if kind == "window":
        make = lambda: WindowDetokenizer(tokenizer.decode)  # noqa: E731
    text = " 你好 🙂 wörld <|end|> "
    tokens = tokenizer.encode(text, add_special_tokens=False)
    pieces = stream(make(), tokens)
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert len(tokens) > len([p for p in pieces if p])  # some tokens waited
