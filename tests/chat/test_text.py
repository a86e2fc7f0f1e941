"""Token ids to text without splitting characters."""

from __future__ import annotations

from typing import Any

from mlx_gen.chat.text import TextRun, TokenText, is_byte_level


def test_byte_level_tokens_give_their_exact_bytes(harmony_tokenizer: Any) -> None:
    token_text = TokenText(harmony_tokenizer)
    text = "naïve 😀 <|end|>\n\t"
    ids = harmony_tokenizer._tokenizer.encode(
        text, add_special_tokens=False, split_special_tokens=True
    )
    assert b"".join(token_text.bytes_of(i) for i in ids) == text.encode()


def test_special_and_unknown_ids_carry_no_bytes(harmony_tokenizer: Any) -> None:
    token_text = TokenText(harmony_tokenizer)
    end = harmony_tokenizer.convert_tokens_to_ids("<|end|>")
    for token_id in (end, len(harmony_tokenizer), 10**9, -3):
        assert token_text.bytes_of(token_id) == b""


def test_a_run_holds_a_partial_character_until_it_completes(
    harmony_tokenizer: Any,
) -> None:
    run = TextRun(TokenText(harmony_tokenizer))
    ids = harmony_tokenizer.encode("😀!", add_special_tokens=False)
    assert len(ids) > 2, "precondition: the emoji spans tokens"
    pieces = [run.add(i) for i in ids]
    assert pieces[0] == ""
    assert "".join(pieces) == "😀!"
    assert run.add(ids[0]) == ""
    assert run.flush() == "\ufffd"
    assert run.flush() == ""


def test_other_tokenizers_fall_back_to_decoding_each_id() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"héllo": 0, "world": 1}, unk_token="héllo"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    assert not is_byte_level(tokenizer)
    token_text = TokenText(tokenizer)
    assert [token_text.bytes_of(i) for i in (0, 1)] == ["héllo".encode(), b"world"]
