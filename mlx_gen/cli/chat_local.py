"""The real mlx-gen server, run in this process on a free loopback port.

`mlx-gen chat --model NAME` talks to it exactly as it talks to a remote
server: the chat then has one client path (the openai SDK), and the local
model gets the server's own chat rendering, harmony parsing, usage counts and
errors instead of a second copy of them. A fresh random API key keeps other
local processes off the port while the chat runs.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings

_START_TIMEOUT = 120.0  # seconds for uvicorn to listen and the warm-up to pass
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # ends in /v1, as the openai SDK wants it
    api_key: str
    model: str


@contextlib.contextmanager
def local_server(settings: Settings) -> Iterator[Endpoint]:
    """Load `settings.model`, serve it on 127.0.0.1, yield where; stop on exit."""
    import uvicorn

    from mlx_gen.engine.types import EngineError
    from mlx_gen.server.app import create_app
    from mlx_gen.server.run import bind, load_served

    key = secrets.token_urlsafe(24)
    settings = settings.model_copy(
        update={
            "host": "127.0.0.1",
            "port": 0,
            "api_keys": [key],
            "api_key_file": None,
            "rate_limit_rpm": None,
            "rate_limit_tpm": None,
        }
    )
    try:
        served = load_served(settings)  # what `mlx-gen serve` serves
    except EngineError as exc:  # the model does not fit the memory budget
        raise CommandError(str(exc)) from None
    try:
        sock = bind(settings.host, settings.port)
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, served),
                log_config=None,
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
        )
        # uvicorn leaves signal handling alone off the main thread, so Ctrl-C
        # stays the chat's.
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        thread.start()
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, thread)
            yield Endpoint(f"{base}/v1", key, served.name)
        finally:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT)
    finally:
        served.engine.shutdown()


def wait_ready(base: str, thread: threading.Thread) -> None:
    """Until /ready answers 200: listening, and one generation went through."""
    import httpx

    deadline = time.monotonic() + _START_TIMEOUT
    last = "no answer"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise CommandError("the local server stopped while starting")
            try:
                response = client.get(f"{base}/ready")
            except httpx.TransportError as exc:
                last = str(exc)
            else:
                if response.status_code == 200:
                    return
                code, last = _error_of(response)
                # A dead engine or a failed warm-up will not get better.
                if code == "engine_dead" or "warm-up failed" in last:
                    raise CommandError(f"the local server cannot serve: {last}")
            time.sleep(0.05)
    raise CommandError(
        f"the local server was not ready in {_START_TIMEOUT:.0f} s: {last}"
    )


def _error_of(response: Any) -> tuple[str | None, str]:
    """(code, message) of an OpenAI-shaped error response."""
    try:
        error = response.json()["error"]
        return error.get("code"), str(error["message"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, response.text
