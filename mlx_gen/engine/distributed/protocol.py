"""Rank 0's calls, sent to the other ranks over `mx.distributed.all_sum`.

A call is a ModelRunner method's name and its arguments (ints, lists of ints,
uint32 token arrays), written as int64 values. Rank 0 sends them in frames of
a fixed size summed over the group, the other ranks adding zeros: a broadcast
made of MLX's own collectives. A call longer than a frame takes several.

Three names are the protocol's own: a heartbeat, the memory report, the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine.memory import weights_bytes

PING = "ping"  # nothing to do: rank 0 is idle, and alive
REPORT = "report_memory"  # every rank's memory figures, gathered
STOP = "stop"

# Room in a frame for a call's name and headers, besides its longest list.
_HEADERS = 32
_INT, _INTS, _TOKENS = range(3)

R = TypeVar("R")


def encode(name: str, args: tuple[Any, ...]) -> list[int]:
    text = list(name.encode())
    values = [len(text), *text, len(args)]
    for arg in args:
        if isinstance(arg, int):
            values += [_INT, 1, arg]
        elif isinstance(arg, mx.array) and arg.dtype == mx.uint32 and arg.ndim == 1:
            tokens = arg.tolist()
            values += [_TOKENS, len(tokens), *tokens]
        elif isinstance(arg, list) and all(isinstance(x, int) for x in arg):
            values += [_INTS, len(arg), *arg]
        else:
            raise TypeError(f"a call to every rank cannot carry a {type(arg)}")
    return values


def decode(values: list[int]) -> tuple[str, list[Any]]:
    n = values[0]
    name = bytes(values[1 : 1 + n]).decode()
    args: list[Any] = []
    at = 2 + n
    for _ in range(values[1 + n]):
        kind, size = values[at], values[at + 1]
        items = values[at + 2 : at + 2 + size]
        at += 2 + size
        if kind == _INT:
            args.append(items[0])
        elif kind == _TOKENS:
            args.append(mx.array(items, dtype=mx.uint32))
        else:
            args.append(items)
    return name, args


class CallChannel:
    """Rank 0 sends; the other ranks receive, in the same order."""

    def __init__(self, group: mx.distributed.Group, payload: int) -> None:
        """A call carrying lists of up to `payload` values takes one frame."""
        self.group = group
        self.frame = payload + _HEADERS

    def send(self, name: str, args: tuple[Any, ...] = ()) -> None:
        """Broadcast one call, and wait for it (see leader.py)."""
        values = encode(name, args)
        message = [len(values), *values]
        for start in range(0, len(message), self.frame):
            frame = message[start : start + self.frame]
            frame += [0] * (self.frame - len(frame))
            mx.eval(self._all_sum(mx.array(frame, dtype=mx.int64)))

    def receive(self) -> tuple[str, list[Any]]:
        message = self._frame()
        while len(message) <= message[0]:
            message += self._frame()
        return decode(message[1 : message[0] + 1])

    def _frame(self) -> list[int]:
        return self._all_sum(mx.zeros(self.frame, mx.int64)).tolist()

    def _all_sum(self, x: mx.array) -> mx.array:
        return mx.distributed.all_sum(x, group=self.group)


def settle(result: R) -> R:
    """A call's result, evaluated if it is an array (a step's logits): every
    rank waits for a call's collectives before it takes the next call."""
    if isinstance(result, mx.array):
        mx.eval(result)
    return result


@dataclass(frozen=True)
class RankMemory:
    rank: int
    weights_bytes: int
    active_bytes: int
    peak_bytes: int


def gather_memory(group: mx.distributed.Group, model: nn.Module) -> list[RankMemory]:
    """Every rank's weights and MLX memory (a collective: all ranks call it)."""
    mine = [weights_bytes(model), mx.get_active_memory(), mx.get_peak_memory()]
    rows = mx.distributed.all_gather(mx.array([mine], dtype=mx.int64), group=group)
    return [RankMemory(i, *row) for i, row in enumerate(rows.tolist())]
