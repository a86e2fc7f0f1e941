"""Token ids to text, one token at a time, without ever splitting a character.

A byte-level BPE token can end in the middle of a UTF-8 character; decoding
it alone would print U+FFFD. `TokenText` maps each id to its raw bytes once and
`TextRun` feeds them through an incremental UTF-8 decoder that holds an
incomplete character until its last byte arrives.
"""

from __future__ import annotations

import codecs
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """The printable stand-in character of each byte in byte-level BPE vocabularies.

    Printable Latin-1 bytes stand for themselves; the others (controls, space,
    a few symbols) are shifted to code points from 256 on, in byte order.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    alphabet = {chr(b): b for b in printable}
    shifted = (b for b in range(256) if b not in set(printable))
    for n, b in enumerate(shifted):
        alphabet[chr(256 + n)] = b
    return alphabet


def special_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the added tokens marked special: they carry no text of their own."""
    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    added = getattr(hf, "added_tokens_decoder", {})
    return {i for i, token in added.items() if token.special}


def is_byte_level(tokenizer: Any) -> bool:
    from tokenizers import decoders

    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    backend = getattr(hf, "backend_tokenizer", None)
    return backend is not None and isinstance(backend.decoder, decoders.ByteLevel)


class TokenText:
    """The bytes of every id of a tokenizer; special and unknown ids give none."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._size = len(tokenizer)
        self._special = special_token_ids(tokenizer)
        self._byte_level = is_byte_level(tokenizer)
        self._cache: dict[int, bytes] = {}

    def bytes_of(self, token_id: int) -> bytes:
        cached = self._cache.get(token_id)
        if cached is None:
            cached = self._cache[token_id] = self._lookup(token_id)
        return cached

    def _lookup(self, token_id: int) -> bytes:
        if token_id in self._special or not 0 <= token_id < self._size:
            return b""
        if self._byte_level:
            piece = self._tokenizer.convert_ids_to_tokens(token_id)
            if piece is None:
                return b""
            alphabet = _byte_level_alphabet()
            if all(c in alphabet for c in piece):
                return bytes(alphabet[c] for c in piece)
            # An added (non-special) token is stored as its plain text.
            return piece.encode()
        # Other tokenizers: a character cut in two is lost, never an exception.
        return self._tokenizer.decode([token_id]).encode()


class TextRun:
    """Incremental UTF-8 text of a run of tokens; `flush` ends the run."""

    def __init__(self, token_text: TokenText) -> None:
        self._token_text = token_text
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        return self._decoder.decode(self._token_text.bytes_of(token_id))

    def flush(self) -> str:
        """The text still held (an unfinished character becomes U+FFFD)."""
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text
