"""Incremental, UTF-8 safe detokenization: token ids in, complete text out.

mlx-lm's streaming detokenizers trim a leading space and hold single spaces
back, so their text is not always `tokenizer.decode(tokens)`. Here the
concatenated deltas are exactly the decoded text:

- byte-level BPE (GPT-OSS, most modern models): a table of each token's bytes,
  built once, and Python's incremental UTF-8 decoder, so a character split
  across tokens waits for its last byte. O(1) per token.
- any other tokenizer: decode a short window of recent tokens and emit what
  grew, holding back while the text ends in an incomplete character.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any, Protocol

from mlx_lm.tokenizer_utils import BPEStreamingDetokenizer, _byte_decoder


class Detokenizer(Protocol):
    def add(self, token: int) -> str: ...

    def flush(self) -> str: ...


class ByteLevelDetokenizer:
    def __init__(self, table: list[bytes]) -> None:
        self._table = table
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def add(self, token: int) -> str:
        table = self._table
        return self._decoder.decode(table[token] if token < len(table) else b"")

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class WindowDetokenizer:
    """Decodes `tokens[prefix:]` against `tokens[prefix:read]` (the vLLM scheme):
    the few tokens of context keep word-boundary spaces right."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._tokens: list[int] = []
        self._prefix = 0
        self._read = 0

    def add(self, token: int) -> str:
        self._tokens.append(token)
        return self._emit(final=False)

    def flush(self) -> str:
        return self._emit(final=True) if self._read < len(self._tokens) else ""

    def _emit(self, final: bool) -> str:
        window = self._tokens[self._prefix :]
        before = self._decode(self._tokens[self._prefix : self._read])
        text = self._decode(window)
        if len(text) <= len(before) or (text.endswith("\ufffd") and not final):
            return ""
        self._prefix = self._read
        self._read = len(self._tokens)
        return text[len(before) :]


def _byte_table(tokenizer: Any) -> list[bytes]:
    byte_of = _byte_decoder()
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    added = {
        i: t.content for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()
    }
    table = []
    for i, piece in enumerate(pieces):
        if i in added:
            table.append(added[i].encode())
        elif piece is None:
            table.append(b"")
        elif all(c in byte_of for c in piece):
            table.append(bytes(byte_of[c] for c in piece))
        else:
            table.append(piece.encode())
    return table


def detokenizer_factory(tokenizer: Any) -> Callable[[], Detokenizer]:
    """Makes fresh per-sequence detokenizers for a TokenizerWrapper."""
    if isinstance(tokenizer.detokenizer, BPEStreamingDetokenizer):
        table = _byte_table(tokenizer)
        return lambda: ByteLevelDetokenizer(table)
    return lambda: WindowDetokenizer(tokenizer.decode)
