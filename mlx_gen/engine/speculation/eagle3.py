"""EAGLE-3 proposals: a one-layer head drafts from the target's own hidden
states (eagle3_head.py).

The head reads, at each position, the inputs of three target layers fused
by its `fc`, beside the embedding of the token that followed. A tap on
those target layers keeps the latest forward pass's states, and the runner
says after each pass what it fed (`HiddenStateReader`): prompt chunks by
slot, then per batch row its decoded token or its verified tokens, of which
only the kept ones count. Each row keeps the head's own KV cache of its
confirmed positions; states wait in the row until it proposes (or until
`catch_up_after` of them wait), then the head reads them in one call.

To propose, the head reads the last confirmed state beside the row's last
token, then its own output beside each token it drafts, greedily, on a
fork of the row's cache (draft.py): nothing is ever rolled back. Positions
a prefix-cache hit skipped are not in the head's cache: it sees less
context there, which costs acceptance, never exactness.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.models.cache import KVCache

from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.speculation.draft import fork_layer
from mlx_gen.engine.speculation.eagle3_head import LoadedHead, load_head
from mlx_gen.engine.types import SpeculationError


@dataclass
class _Stream:
    """What the head knows of one prompt or row."""

    cache: KVCache  # the head's one layer
    # (1, 3 x hidden): the fused state of the last position the head has
    # not read, because the token after it was not fed yet.
    last: mx.array | None = None
    # (tokens (n,), states (n, 3 x hidden)) fed to the target since.
    pending: list[tuple[mx.array, mx.array]] = field(default_factory=list)

    def copy(self) -> _Stream:
        return _Stream(fork_layer(self.cache), self.last, [*self.pending])


def _tap(layers: list[nn.Module], indices: set[int]) -> dict[int, mx.array]:
    """Keep, of each forward pass, the input of each layer in `indices` as
    state i and its output as state i + 1 (references only: no extra work).
    A model is tapped once: later proposers on it share its states."""
    tapped = [type(layer).tap_states for layer in layers if _is_tapped(layer)]
    states: dict[int, mx.array] = tapped[0] if tapped else {}
    for index in indices:
        layer = layers[index]
        if _is_tapped(layer):
            continue
        base = type(layer)

        def call(self: nn.Module, x: mx.array, *args: Any, **kw: Any) -> mx.array:
            i = type(self).tap_index
            states[i] = x
            out = super(type(self), self).__call__(x, *args, **kw)
            states[i + 1] = out
            return out

        attributes = {"__call__": call, "tap_states": states, "tap_index": index}
        layer.__class__ = type(f"Tapped{base.__name__}", (base,), attributes)
    return states


def _is_tapped(layer: nn.Module) -> bool:
    return hasattr(type(layer), "tap_states")


class Eagle3Proposer:
    catch_up_after = 32

    def __init__(self, loaded: LoadedHead, target: nn.Module) -> None:
        self.head, self._d2t = loaded.head, loaded.draft_to_target
        layers = target.layers
        self._ids = self.head.config.aux_layers(len(layers))
        self._states = _tap(layers, {min(i, len(layers) - 1) for i in self._ids})
        self._embed = loaded.embed_tokens or target.model.embed_tokens
        own = [self.head.parameters(), loaded.draft_to_target]
        if loaded.embed_tokens is not None:
            own.append(loaded.embed_tokens.parameters())
        self.weights_bytes = sum(v.nbytes for _, v in tree_flatten(own))
        self._prompts: dict[int, _Stream] = {}
        self._rows: weakref.WeakKeyDictionary[Sequence, _Stream] = (
            weakref.WeakKeyDictionary()
        )

    # What the runner fed (HiddenStateReader).

    def fed_prompt(self, slot: int, tokens: mx.array, row: int = 0) -> None:
        """The last pass fed `tokens` (n,) of the prompt in `slot`, as the
        first n positions of its batch row `row`."""
        stream = self._prompts.get(slot)
        if stream is None:
            stream = self._prompts[slot] = _Stream(KVCache())
        self._observe(stream, tokens, self._fused()[row, : tokens.size])

    def fed_rows(self, rows: list[Sequence], tokens: mx.array, kept: list[int]) -> None:
        """The last pass fed row i `tokens[i]`, of which its first `kept[i]`
        stay."""
        fused = self._fused()
        for i, (seq, n) in enumerate(zip(rows, kept, strict=True)):
            stream = self._rows.get(seq)
            if stream is not None:
                self._observe(stream, tokens[i, :n], fused[i, :n])

    def joined(self, seqs: list[Sequence], slot: int) -> None:
        """`seqs` join the batch from the prompt in `slot`."""
        stream = self._prompts.pop(slot, None) or _Stream(KVCache())
        for seq in seqs:
            self._rows[seq] = stream.copy()

    def released(self, slots: list[int]) -> None:
        for slot in slots:
            self._prompts.pop(slot, None)

    # Proposals.

    def propose(self, seq: Sequence, k: int) -> list[int]:
        stream = self._rows.get(seq)
        if stream is None:
            return []
        self._catch_up(stream)
        if stream.last is None:
            return []
        text = seq.output or seq.request.prompt_token_ids
        fork = fork_layer(stream.cache)
        token, hidden = mx.array([text[-1]]), stream.last[None]
        drafted = []
        for _ in range(k):
            hidden = self.head.step(self._embed(token)[None], hidden, fork)
            best = mx.argmax(self.head.logits(hidden[:, -1]), axis=-1)
            token = self._d2t[best]
            drafted.append(token)
        mx.eval(drafted, _arrays(stream))
        return [int(t.item()) for t in drafted]

    def _fused(self) -> mx.array:
        """(B, n, 3 x hidden): the tapped states of the last pass."""
        return mx.concatenate([self._states[i] for i in self._ids], axis=-1)

    def _observe(self, stream: _Stream, tokens: mx.array, states: mx.array) -> None:
        stream.pending.append((tokens, states))
        if sum(t.size for t, _ in stream.pending) >= self.catch_up_after:
            self._catch_up(stream)
            mx.async_eval(_arrays(stream))

    def _catch_up(self, stream: _Stream) -> None:
        """The head reads the positions whose next token is fed: all
        pending ones but the last, which becomes `last`."""
        if not stream.pending:
            return
        tokens = mx.concatenate([t for t, _ in stream.pending])
        states = mx.concatenate([s for _, s in stream.pending])
        stream.pending = []
        if stream.last is None:  # the first position's state has no token
            tokens, before = tokens[1:], states[:-1]
        else:
            before = mx.concatenate([stream.last, states[:-1]])
        if tokens.size:
            self.head.step(self._embed(tokens)[None], before[None], stream.cache)
        stream.last = states[-1:]


def _arrays(stream: _Stream) -> list[mx.array]:
    cache = stream.cache
    return [] if cache.keys is None else [cache.keys, cache.values]


def load_eagle3(path: Path, target: nn.Module) -> Eagle3Proposer:
    """The proposer of the head in directory `path`, tapping `target`."""
    embed = getattr(getattr(target, "model", None), "embed_tokens", None)
    if embed is None or not hasattr(target, "layers"):
        raise SpeculationError(
            "eagle3 heads need a model with model.embed_tokens and layers"
        )
    # Through a call: a quantized embedding's weight is packed.
    hidden = embed(mx.array([0])).shape[-1]
    loaded = load_head(path, hidden, embed.weight.shape[0])
    return Eagle3Proposer(loaded, target)
