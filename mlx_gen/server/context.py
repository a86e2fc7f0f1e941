"""What one request carries between the middlewares and its handler.

The outermost middleware creates a `RequestInfo` and puts it in the ASGI scope;
auth fills in the key id, handlers fill in model and token counts, and the
access log reads it all back when the response is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

_SCOPE_KEY = "mlx_gen.request"


@dataclass
class RequestInfo:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    key_id: str = "-"
    endpoint: str = ""
    model: str | None = None
    status: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    accepted_tokens: int = 0  # speculative proposals kept
    ttft: float | None = None  # seconds from arrival to the first generated token

    def mark_first_token(self) -> None:
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.started

    def add_usage(self, usage: dict[str, Any]) -> None:
        """Record an OpenAI usage object (chat or completions)."""
        self.prompt_tokens = usage["prompt_tokens"]
        self.completion_tokens = usage["completion_tokens"]
        details = usage.get("completion_tokens_details") or {}
        self.reasoning_tokens = details.get("reasoning_tokens", 0)
        cached = usage.get("prompt_tokens_details") or {}
        self.cached_tokens = cached.get("cached_tokens", 0)


def attach(scope: Scope, info: RequestInfo) -> None:
    scope[_SCOPE_KEY] = info


def info_of(scope: Scope) -> RequestInfo:
    info = scope.get(_SCOPE_KEY)
    if info is None:  # a handler reached without the app's middleware (tests)
        info = RequestInfo(request_id="-")
        scope[_SCOPE_KEY] = info
    return info
