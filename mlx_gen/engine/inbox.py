"""What the caller's side tells the engine thread, through its inbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlx_gen.engine.types import GenerationRequest


@dataclass(frozen=True)
class Submit:
    request: GenerationRequest
    sink: Any  # where its events go (stream.py)
    submitted: float  # time.perf_counter() when `submit` took it


@dataclass(frozen=True)
class Abort:
    request_id: str
    index: int | None = None  # one choice of the request; None: all of them


@dataclass(frozen=True)
class Stop:
    """Let running work finish until `deadline` (time.perf_counter()), abort
    the rest, and end the thread."""

    deadline: float


Command = Submit | Abort | Stop
