"""Helpers of the server tests: scripted outputs and a live uvicorn server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from polling import wait_until
from starlette.applications import Starlette

from mlx_gen.engine.types import GenerationRequest, LogitsProcessor
from mlx_gen.server.run import bind
from mlx_gen.settings import Settings


def script_ids(tokenizer: Any, text: str) -> list[int]:
    """Harmony text (control tokens written out) as the ids a model would emit."""
    return tokenizer.encode(text, add_special_tokens=False)


def force_tokens(ids: list[int], prompt_len: int) -> LogitsProcessor:
    """A logits processor that makes any sampler pick `ids`, in order."""
    import mlx.core as mx

    def force(tokens: mx.array, logits: mx.array) -> mx.array:
        step = min(tokens.size - prompt_len, len(ids) - 1)
        pick = mx.arange(logits.shape[-1]) == ids[step]
        return mx.where(pick, mx.zeros_like(logits), mx.full(logits.shape, -1e9))

    return force


def fail_after(n_tokens: int, prompt_len: int) -> LogitsProcessor:
    """A processor that raises once `n_tokens` were generated: an engine error."""

    def fail(tokens: Any, logits: Any) -> Any:
        if tokens.size - prompt_len >= n_tokens:
            raise RuntimeError("scripted failure")
        return logits

    return fail


class Script:
    """The served model's test hook: what the next requests are made to emit."""

    def __init__(self) -> None:
        self.ids: list[int] | None = None
        self.fail_after: int | None = None
        self.explode = False  # raise in the server itself: an internal error

    def reset(self) -> None:
        self.ids = None
        self.fail_after = None
        self.explode = False

    def __call__(self, request: GenerationRequest) -> None:
        if self.explode:
            raise RuntimeError("scripted bug in the server (secret detail)")
        prompt_len = len(request.prompt_token_ids)
        if self.ids is not None:
            request.logits_processors.append(force_tokens(self.ids, prompt_len))
        if self.fail_after is not None:
            request.logits_processors.append(fail_after(self.fail_after, prompt_len))


def settings_for(**overrides: Any) -> Settings:
    """Settings from the arguments only (no .env file), for a test app."""
    return Settings(_env_file=None, **overrides)


class LiveServer:
    """uvicorn serving `app` on a free loopback port, in a background thread."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        sock = bind("127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    @property
    def state(self) -> Any:
        return self.app.state.mlx_gen

    def start(self, wait_ready: bool = True) -> LiveServer:
        self.thread.start()
        if wait_until(
            lambda: self.server.started and (not wait_ready or self.state.warmed), 30
        ):
            return self
        raise TimeoutError("the test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def live(app: Starlette, wait_ready: bool = True) -> Iterator[LiveServer]:
    server = LiveServer(app).start(wait_ready)
    try:
        yield server
    finally:
        server.stop()


def access_lines(caplog: Any, count: int, timeout: float = 5.0) -> list[dict]:
    """The `mlx_gen.access` lines, once there are `count` of them: the server
    logs a request's line after its last byte went out, so the client may see
    its answer before the line is written."""

    def logged() -> list[dict]:
        records = [r for r in caplog.records if r.name == "mlx_gen.access"]
        return [json.loads(r.getMessage()) for r in records]

    wait_until(lambda: len(logged()) >= count, timeout)
    return logged()


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line]
