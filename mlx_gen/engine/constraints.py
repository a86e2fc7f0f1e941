"""Constrained decoding: a per-row grammar that masks the logits of its row.

The library is llguidance (Rust, Earley parser over a lexer, no third-party
Python dependency). It was chosen by measurement on the synthetic tokenizers
(byte-level BPE with the harmony special tokens, 1024 and 8192 tokens), for a
5-field JSON schema behind a harmony header:

- llguidance 1.9.1: a schema compiles in about 1.2 ms; a mask costs about
  0.05-0.16 ms for one row and 2.3 ms for 32 rows on 2 shared cores. Its
  grammars name special tokens by id, which harmony needs (the analysis
  channel is free text, then the final channel's JSON), bound a lexeme's
  tokens (the reasoning budget) and embed JSON Schema (`%json`).
- outlines-core 0.2.14: masks are near free (0.005 ms, 0.4 ms for 32 rows)
  because a regex index is built ahead, but that index takes 50-460 ms per
  schema, and a regex cannot express the harmony structure (special tokens,
  recursive schemas).
- xgrammar 0.2.9: requires torch, transformers and triton: rejected unmeasured.

A row's matcher advances with each token the row samples; the mask of step k
needs the token of step k-1, which the pipelined runner has not read when it
builds step k. So, for a batch with constrained rows, the runner starts the
forward pass of step k, reads step k-1's tokens meanwhile, advances the
matchers and computes the masks (llguidance releases the GIL) while the
forward pass runs, and only then queues the sampling. Unconstrained rows get
an all-true mask: their logits, and so their greedy tokens, are unchanged.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import llguidance
import llguidance.numpy
import mlx.core as mx
import numpy as np

from mlx_gen.engine.types import InvalidRequest


class InvalidGrammar(InvalidRequest):
    """A grammar (or the JSON schema it embeds) the library cannot compile."""


@dataclass(frozen=True)
class Constraint:
    """A compiled grammar in its initial state; each choice runs a copy."""

    matcher: llguidance.LLMatcher
    vocab_size: int  # the tokenizer's: the width of the mask

    def start(self) -> llguidance.LLMatcher:
        return self.matcher.deep_copy()


_tokenizers: weakref.WeakKeyDictionary[Any, llguidance.LLTokenizer] = (
    weakref.WeakKeyDictionary()
)
_tokenizers_lock = threading.Lock()


def constraint_tokenizer(tokenizer: Any) -> llguidance.LLTokenizer:
    """The library's view of an mlx-lm tokenizer (built once: up to a second
    for a 200k vocabulary). Its end tokens are the tokenizer's, so a grammar
    that is complete allows only them and the row stops."""
    with _tokenizers_lock:
        found = _tokenizers.get(tokenizer)
        if found is None:
            hf = getattr(tokenizer, "_tokenizer", tokenizer)
            found = llguidance.LLTokenizer(
                hf.backend_tokenizer.to_str(),
                eos_token=sorted(tokenizer.eos_token_ids),
            )
            _tokenizers[tokenizer] = found
        return found


def lark_grammar(lark: str) -> str:
    """The library's grammar of a Lark text (checked when compiled)."""
    return llguidance.LLMatcher.grammar_from_lark(lark)


# Agents send the same tools and schemas turn after turn: a compiled grammar
# is only ever copied, never advanced, so one compilation serves them all.
@functools.lru_cache(maxsize=256)
def compile_grammar(grammar: str, tokenizer: Any) -> Constraint:
    """Compile an llguidance grammar (`lark_grammar`); raises InvalidGrammar
    naming the problem."""
    lltokenizer = constraint_tokenizer(tokenizer)
    matcher = llguidance.LLMatcher(lltokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise InvalidGrammar(_message(matcher.get_error()))
    return Constraint(matcher, lltokenizer.vocab_size)


def _message(error: str) -> str:
    """The library's error without its grammar position ("at 2(7): ")."""
    text = re.sub(r"^at \d+\(\d+\): ", "", error.strip()).split("<state>")[0]
    return " ".join(text.split())[:500] or "invalid grammar"


@dataclass
class MaskClock:
    """Totals since the process started, for /metrics: engine thread only."""

    masks: int = 0
    seconds: float = 0.0


MASK_CLOCK = MaskClock()


class ConstraintMasks:
    """The matchers of a batch's constrained rows and their masks, per step."""

    def __init__(self) -> None:
        self._executor = llguidance.LLExecutor(num_threads=2)
        self._matchers: weakref.WeakKeyDictionary[Any, llguidance.LLMatcher] = (
            weakref.WeakKeyDictionary()
        )

    @staticmethod
    def constrained(rows: Iterable[Any]) -> bool:
        return any(seq.request.constraint is not None for seq in rows)

    def advance(self, sampled: Iterable[tuple[Any, int, Any]]) -> list[Any]:
        """Feed each constrained row the token it sampled; return the rows
        whose matcher refused it (their grammar is broken: end them)."""
        refused = []
        for seq, token, _ in sampled:
            matcher = self._matchers.get(seq)
            if matcher is None or matcher.is_stopped():
                continue
            if not matcher.consume_token(token):
                refused.append((seq, ValueError(_message(matcher.get_error()))))
        return refused

    def apply(self, rows: list[Any], logits: mx.array) -> mx.array:
        """`logits` (B, vocab) with the disallowed tokens of each constrained
        row at -inf; the other rows are left as they are."""
        start = time.perf_counter()
        width = logits.shape[-1]
        active, free, words = [], np.ones((len(rows), 1), np.bool_), 1
        for i, seq in enumerate(rows):
            constraint = seq.request.constraint
            if constraint is None:
                continue
            free[i] = False
            words = (constraint.vocab_size + 31) // 32
            matcher = self._matchers.get(seq)
            if matcher is None:
                matcher = self._matchers[seq] = constraint.start()
            # A complete grammar's mask allows only the end tokens: the row stops.
            active.append((matcher, i))
        bitmask = np.full((len(rows), words), -1, dtype=np.int32)
        if active:
            llguidance.numpy.fill_next_token_bitmask_par(
                self._executor, active, bitmask
            )
        bits = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")
        allowed = bits[:, :width].astype(np.bool_)
        if allowed.shape[1] < width:  # ids past the tokenizer's: free rows only
            extra = np.repeat(free, width - allowed.shape[1], axis=1)
            allowed = np.concatenate([allowed, extra], axis=1)
        MASK_CLOCK.masks += len(active)
        MASK_CLOCK.seconds += time.perf_counter() - start
        neg_inf = mx.array(-mx.inf, logits.dtype)
        return mx.where(mx.array(allowed), logits, neg_inf)
