"""Clients of the reliability suites: what happened to each request, judged."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .server_process import MODEL

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
ERROR_FIELDS = {"message", "type", "param", "code"}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error", "authentication_error", "permission_error",
    "not_found_error", "request_too_large", "rate_limit_error", "api_error",
    "overloaded_error",
}  # fmt: skip


def chat_body(content: str = "Hi", max_tokens: int = 8, **fields: Any) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        **fields,
    }


def stream_body(content: str = "Hi", max_tokens: int = 8, **fields: Any) -> dict:
    return chat_body(
        content, max_tokens, stream=True, stream_options={"include_usage": True},
        **fields,
    )  # fmt: skip


def is_openai_error(body: Any) -> bool:
    """Exactly `{"error": {"message", "type", "param", "code"}}`, message a string."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) == ERROR_FIELDS
        and isinstance(error["message"], str)
        and bool(error["message"])
        and isinstance(error["type"], str)
    )


def is_anthropic_error(body: Any) -> bool:
    """Exactly `{"type": "error", "error": {"type", "message"}}`, of a known type."""
    if not isinstance(body, dict) or body.keys() != {"type", "error"}:
        return False
    error = body["error"]
    return (
        body["type"] == "error"
        and isinstance(error, dict)
        and error.keys() == {"type", "message"}
        and error["type"] in ANTHROPIC_ERROR_TYPES
        and isinstance(error["message"], str)
        and bool(error["message"])
    )


def is_error_of(path: str, body: Any) -> bool:
    """An error in the shape of the API `path` belongs to."""
    if path in (MESSAGES, COUNT_TOKENS):
        return is_anthropic_error(body)
    return is_openai_error(body)


@dataclass
class Outcome:
    """One request as the client saw it."""

    status: int | None = None  # None: no HTTP answer at all
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the JSON of a whole answer or of an error
    chunks: list[dict] = field(default_factory=list)  # streamed data frames
    done: bool = False  # `data: [DONE]` (Anthropic: its last event) arrived
    stream_error: dict | None = None  # an error frame inside a 200 stream
    exception: str | None = None

    @property
    def usage(self) -> dict | None:
        if self.chunks:
            return self.chunks[-1].get("usage")
        return self.body.get("usage") if isinstance(self.body, dict) else None

    @property
    def complete(self) -> bool:
        """A 200 that ended properly: usage present and, streamed, `[DONE]`."""
        if self.status != 200 or self.stream_error is not None:
            return False
        return self.usage is not None and (self.done or not self.chunks)

    @property
    def refused(self) -> bool:
        """A clean refusal: 429 or 503 in the OpenAI shape with a Retry-After."""
        return (
            self.status in (429, 503)
            and self.headers.get("retry-after", "").isdigit()
            and is_openai_error(self.body)
        )

    def describe(self) -> str:
        detail = self.exception or self.stream_error or self.body
        return f"status={self.status} done={self.done} {str(detail)[:300]}"


async def stream(
    client: httpx.AsyncClient,
    url: str,
    body: dict,
    on_frame: Callable[[], object] | None = None,
) -> Outcome:
    """POST a streaming request and read it to its end; `on_frame` is called
    after each data frame."""
    outcome = Outcome()
    try:
        async with client.stream("POST", url, json=body) as response:
            outcome.status = response.status_code
            outcome.headers = dict(response.headers)
            if response.status_code != 200:
                outcome.body = json.loads(await response.aread())
                return outcome
            async for line in response.aiter_lines():
                read_frame(outcome, line)
                if on_frame is not None and line.startswith("data: "):
                    on_frame()
    except (httpx.HTTPError, ValueError) as exc:
        outcome.exception = f"{type(exc).__name__}: {exc}"
    return outcome


async def started_streams(
    client: httpx.AsyncClient, url: str, bodies: list[dict], timeout: float
) -> list[asyncio.Future[Outcome]]:
    """Start a stream per body; return them, running, once each has had its
    first data frame (or ended without one)."""
    events = [asyncio.Event() for _ in bodies]

    async def one(body: dict, started: asyncio.Event) -> Outcome:
        outcome = await stream(client, url, body, on_frame=started.set)
        started.set()  # also when it failed before any frame: do not wait forever
        return outcome

    running = [
        asyncio.ensure_future(one(b, e)) for b, e in zip(bodies, events, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)
    return running


def read_frame(outcome: Outcome, line: str) -> None:
    if not line.startswith("data: "):
        return
    data = line[6:]
    if data == "[DONE]":
        outcome.done = True
        return
    try:
        frame = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"a data frame that is not JSON: {line!r}") from exc
    if "error" in frame:
        outcome.stream_error = frame
    else:
        outcome.chunks.append(frame)
    # Anthropic's stream ends with its last event, not `[DONE]`.
    if frame.get("type") in ("message_stop", "error"):
        outcome.done = True


async def post(client: httpx.AsyncClient, url: str, body: Any) -> Outcome:
    """POST a whole request (JSON, or raw bytes when `body` is bytes)."""
    outcome = Outcome()
    content = body if isinstance(body, bytes) else None
    payload = None if isinstance(body, bytes) else body
    try:
        response = await client.post(url, json=payload, content=content)
        outcome.status = response.status_code
        outcome.headers = dict(response.headers)
        outcome.body = response.json()
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        outcome.exception = f"{type(exc).__name__}: {exc}"
    return outcome


def async_client(connections: int, timeout: float = 120.0) -> httpx.AsyncClient:
    """Enough connections that no request waits for one inside the client."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections
    )
    return httpx.AsyncClient(limits=limits, timeout=timeout)


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def raw_exchange(base: str, request: bytes, timeout: float = 30.0) -> Outcome:
    """Send `request` exactly as given on a new connection and read the answer;
    no answer at all (the server closed the connection) is status None."""
    outcome = Outcome()
    with socket.create_connection(address(base), timeout) as sock:
        try:
            sock.sendall(request)
            method = request.split(b" ", 1)[0].decode("latin-1")
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            outcome.status = response.status
            outcome.headers = {k.lower(): v for k, v in response.getheaders()}
            raw = response.read()
        except (http.client.HTTPException, ConnectionError) as exc:
            outcome.exception = f"{type(exc).__name__}: {exc}"
            return outcome
    try:
        outcome.body = json.loads(raw)
    except ValueError:
        outcome.body = raw.decode("latin-1")
    return outcome
