"""Token ids to text: mlx-gen's one decoder, for the engine, the chat formats
and the token texts of logprobs.

mlx-lm's streaming detokenizers trim a leading space and hold single spaces
back, so their text is not always `tokenizer.decode(tokens)`. Here the
concatenated deltas are exactly the decoded text:

- byte-level BPE (GPT-OSS, most modern models): a table of each token's bytes,
  built once per tokenizer, and Python's incremental UTF-8 decoder, so a
  character split across tokens waits for its last byte. O(1) per token.
- any other tokenizer: decode a short window of recent tokens and emit what
  grew, holding back while the text ends in an incomplete character.

A stream may be told to skip ids (the chat formats skip special tokens, which
carry no text of their own there); the engine's raw text skips none.
"""

from __future__ import annotations

import codecs
import threading
import weakref
from collections.abc import Callable, Collection
from typing import Any, Protocol

from mlx_lm.tokenizer_utils import BPEStreamingDetokenizer, _byte_decoder


class Detokenizer(Protocol):
    def add(self, token: int) -> str: ...

    def flush(self) -> str: ...


class ByteLevelDetokenizer:
    def __init__(self, table: list[bytes], skip: Collection[int] = ()) -> None:
        self._table = table
        self._skip = skip
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def add(self, token: int) -> str:
        table = self._table
        if not 0 <= token < len(table) or token in self._skip:
            return ""
        return self._decoder.decode(table[token])

    def flush(self) -> str:
        """The text still held (an unfinished character becomes U+FFFD); the
        stream goes on afterwards."""
        return self._decoder.decode(b"", final=True)


class WindowDetokenizer:
    """Decodes `tokens[prefix:]` against `tokens[prefix:read]` (the vLLM scheme):
    the few tokens of context keep word-boundary spaces right."""

    def __init__(
        self, decode: Callable[[list[int]], str], skip: Collection[int] = ()
    ) -> None:
        self._decode = decode
        self._skip = skip
        self._tokens: list[int] = []
        self._prefix = 0
        self._read = 0

    def add(self, token: int) -> str:
        if token in self._skip:
            return ""
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


def special_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the added tokens marked special (control tokens)."""
    added = getattr(tokenizer, "added_tokens_decoder", {})
    return frozenset(i for i, token in added.items() if token.special)


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


class TokenDecoder:
    """One tokenizer's token-to-text mapping (an mlx-lm TokenizerWrapper's)."""

    def __init__(self, tokenizer: Any) -> None:
        self.special_ids = special_token_ids(tokenizer)
        self._decode = tokenizer.decode
        self._table: list[bytes] | None = None
        if isinstance(tokenizer.detokenizer, BPEStreamingDetokenizer):
            self._table = _byte_table(tokenizer)
        self._decoded: dict[int, bytes] = {}  # other tokenizers: ids seen

    def stream(self, skip: Collection[int] = ()) -> Detokenizer:
        """A fresh detokenizer for one sequence of ids; `skip` ids give no text."""
        if self._table is not None:
            return ByteLevelDetokenizer(self._table, skip)
        return WindowDetokenizer(self._decode, skip)

    def token_bytes(self, token_id: int) -> bytes:
        """One token's own bytes (for byte-level BPE, maybe part of a character)."""
        table = self._table
        if table is not None:
            return table[token_id] if 0 <= token_id < len(table) else b""
        cached = self._decoded.get(token_id)
        if cached is None:
            cached = self._decoded[token_id] = self._decode([token_id]).encode()
        return cached

    def token_text(self, token_id: int) -> str:
        return self.token_bytes(token_id).decode("utf-8", "replace")


_decoders: weakref.WeakKeyDictionary[Any, TokenDecoder] = weakref.WeakKeyDictionary()
_decoders_lock = threading.Lock()


def decoder_for(tokenizer: Any) -> TokenDecoder:
    """The decoder of `tokenizer`, built once and shared (its table is large:
    one entry per vocabulary id)."""
    with _decoders_lock:
        decoder = _decoders.get(tokenizer)
        if decoder is None:
            decoder = _decoders[tokenizer] = TokenDecoder(tokenizer)
        return decoder
