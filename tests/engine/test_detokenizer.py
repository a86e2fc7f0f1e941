"""The one decoder: the deltas add up to exactly the decoded text; token bytes."""

from __future__ import annotations

import random

import pytest

from mlx_gen.engine.detokenizer import (
    ByteLevelDetokenizer,
    TokenDecoder,
    WindowDetokenizer,
    decoder_for,
)


def stream(detokenizer, tokens: list[int]) -> list[str]:
    return [detokenizer.add(t) for t in tokens] + [detokenizer.flush()]


def make_stream(tokenizer, kind: str, skip=()):
    if kind == "window":
        return WindowDetokenizer(tokenizer.decode, skip)
    return decoder_for(tokenizer).stream(skip)


def test_the_harmony_tokenizer_gets_the_byte_level_detokenizer(tokenizer):
    assert isinstance(decoder_for(tokenizer).stream(), ByteLevelDetokenizer)


def test_one_decoder_per_tokenizer(tokenizer):
    assert decoder_for(tokenizer) is decoder_for(tokenizer)


@pytest.mark.parametrize("kind", ["byte-level", "window"])
def test_random_token_streams_match_decode(tokenizer, kind):
    rng = random.Random(0)
    for _ in range(100):
        tokens = [rng.randrange(len(tokenizer)) for _ in range(rng.randrange(1, 30))]
        pieces = stream(make_stream(tokenizer, kind), tokens)
        assert "".join(pieces) == tokenizer.decode(tokens)


@pytest.mark.parametrize("kind", ["byte-level", "window"])
def test_a_split_character_waits_for_its_last_byte(tokenizer, kind):
    text = " 你好 🙂 wörld <|end|> "
    tokens = tokenizer.encode(text, add_special_tokens=False)
    pieces = stream(make_stream(tokenizer, kind), tokens)
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert len(tokens) > len([p for p in pieces if p])  # some tokens waited


@pytest.mark.parametrize("kind", ["byte-level", "window"])
def test_skipped_ids_give_no_text(tokenizer, kind):
    special = decoder_for(tokenizer).special_ids
    tokens = tokenizer.encode("a<|end|>b<|start|>c", add_special_tokens=False)
    assert len(special.intersection(tokens)) == 2, "precondition: two special ids"
    assert "".join(stream(make_stream(tokenizer, kind, special), tokens)) == "abc"


def test_a_flush_shows_a_character_cut_short_and_the_stream_goes_on(tokenizer):
    detokenizer = decoder_for(tokenizer).stream()
    ids = tokenizer.encode("😀!", add_special_tokens=False)
    assert len(ids) > 2, "precondition: the emoji spans tokens"
    assert detokenizer.add(ids[0]) == ""
    assert detokenizer.flush() == "\ufffd"
    assert detokenizer.flush() == ""
    assert "".join(stream(detokenizer, ids)) == "😀!"


def test_token_bytes_are_exact_even_inside_a_character(tokenizer):
    decoder = decoder_for(tokenizer)
    text = "naïve 😀 <|end|>\n\t"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert b"".join(decoder.token_bytes(i) for i in ids) == text.encode()
    emoji = tokenizer.encode("😀", add_special_tokens=False)
    assert len(emoji) > 1, "precondition: the emoji spans tokens"
    assert decoder.token_text(emoji[0]) == "\ufffd"
    for unknown in (len(tokenizer) + 5, 10**9, -3):
        assert decoder.token_bytes(unknown) == b""
        assert decoder.stream().add(unknown) == ""


def test_other_tokenizers_decode_each_token_by_itself() -> None:
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"héllo": 0, "world": 1}, unk_token="héllo"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()
    tokenizer = TokenizerWrapper(PreTrainedTokenizerFast(tokenizer_object=backend))
    decoder = TokenDecoder(tokenizer)
    assert isinstance(decoder.stream(), WindowDetokenizer)
    assert [decoder.token_bytes(i) for i in (0, 1)] == ["héllo".encode(), b"world"]
    assert "".join(stream(decoder.stream(), [0, 1, 0])) == "héllo world héllo"
