"""One timed request to an OpenAI-compatible server, streamed or whole, chat
or completions, and a client's retries after 429 / 503 with `Retry-After`.

Timed the way vLLM's benchmarks do: TTFT from request sent to first streamed
token, every gap between streamed chunks, end-to-end latency, output tokens
from the server's usage (or, when it sends none, one per streamed chunk).
For reasoning models the first ANSWER token is timed too: a user waits for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mlx_gen.bench.workload import RequestSpec

# Fields a streamed delta carries reasoning in, as vLLM (reasoning_content) and
# mlx-lm / mlx-gen (reasoning) name it.
_REASONING_FIELDS = ("reasoning_content", "reasoning")
RETRIED_STATUSES = ("429", "503")


@dataclass
class RequestResult:
    ok: bool
    sent_at: float  # seconds since the run (or level) started
    error: str | None = None  # HTTP status ("429") or exception kind
    detail: str = ""
    ttft: float | None = None
    e2el: float | None = None
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    text_chunks: int = 0  # streamed chunks that carried text
    prompt_tokens: int | None = None
    usage_reported: bool = False
    done_at: float = 0.0  # seconds since the run started, success or not
    stream: bool = True
    effort: str | None = None
    answer_ttft: float | None = None  # to the first token that is not reasoning
    reasoning_tokens: int = 0
    retry_after: float | None = None  # the server's Retry-After on a 429 / 503
    user: int | None = None  # the virtual user that sent it (closed loop)
    attempt: int = 1

    @property
    def tpot(self) -> float | None:
        if not self.ok or self.output_tokens < 2 or self.ttft is None:
            return None
        return (self.e2el - self.ttft) / (self.output_tokens - 1)


def headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _body(model: str, endpoint: str, spec: RequestSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": spec.max_tokens}
    if endpoint == "chat":
        body["messages"] = list(spec.messages)
    else:
        body["prompt"] = spec.prompt
    if spec.effort is not None:
        body["reasoning_effort"] = spec.effort
    if spec.stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def _texts(chunk: dict[str, Any]) -> tuple[bool, bool]:
    """Whether a chunk carries reasoning text, and whether it carries answer
    text (content, completions text or tool calls)."""
    reasoning = answer = False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        reasoning |= any(delta.get(name) for name in _REASONING_FIELDS)
        answer |= bool(
            delta.get("content") or delta.get("tool_calls") or choice.get("text")
        )
    return reasoning, answer


def _read_usage(result: RequestResult, usage: dict[str, Any] | None) -> None:
    if not usage:
        return
    result.usage_reported = True
    result.output_tokens = int(usage.get("completion_tokens") or 0)
    result.prompt_tokens = usage.get("prompt_tokens")
    details = usage.get("completion_tokens_details") or {}
    result.reasoning_tokens = int(details.get("reasoning_tokens") or 0)


async def _read_stream(
    response: httpx.Response, result: RequestResult, sent: float
) -> bool:
    """Times the chunks of an SSE stream; whether it ended with [DONE]."""
    last_token_at: float | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return True
        now = time.perf_counter()
        chunk = json.loads(payload)
        if "error" in chunk:
            result.error, result.detail = "stream_error", str(chunk["error"])[:300]
            return False
        reasoning, answer = _texts(chunk)
        if reasoning or answer:
            result.text_chunks += 1
            if last_token_at is None:
                result.ttft = now - sent
            else:
                result.itl.append(now - last_token_at)
            last_token_at = now
        if answer and result.answer_ttft is None:
            result.answer_ttft = now - sent
        _read_usage(result, chunk.get("usage"))
    return False


async def _send(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    api_key: str | None,
    result: RequestResult,
) -> None:
    sent = time.perf_counter()
    async with client.stream(
        "POST", url, json=body, headers=headers(api_key)
    ) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode("utf-8", "replace")
            result.error, result.detail = str(response.status_code), text[:300]
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                result.retry_after = float(retry_after)
            return
        if body.get("stream"):
            done = await _read_stream(response, result, sent)
        else:
            _read_usage(result, json.loads(await response.aread()).get("usage"))
            done = True
    result.e2el = time.perf_counter() - sent
    if not done:
        result.error = result.error or "incomplete_stream"
        return
    if not result.usage_reported:
        result.output_tokens = result.text_chunks
    result.ok = True


async def timed_request(
    client: httpx.AsyncClient,
    config: Any,  # a loadgen.LoadConfig (its module imports this one)
    spec: RequestSpec,
    origin: float,
) -> RequestResult:
    """Sends `spec`; never raises for what a server or network can do."""
    endpoint = config.workload.endpoint
    path = "/v1/chat/completions" if endpoint == "chat" else "/v1/completions"
    body = _body(config.model, endpoint, spec)
    result = RequestResult(
        ok=False,
        sent_at=time.perf_counter() - origin,
        stream=spec.stream,
        effort=spec.effort,
    )
    try:
        await asyncio.wait_for(
            _send(client, config.base_url + path, body, config.api_key, result),
            config.request_timeout,
        )
    except (asyncio.TimeoutError, httpx.TimeoutException):
        result.ok, result.error = False, "timeout"
    except httpx.HTTPError as exc:
        result.ok, result.error = False, type(exc).__name__
        result.detail = str(exc)[:300]
    except ValueError as exc:  # a body or stream that is not JSON
        result.ok, result.error, result.detail = False, "bad_stream", str(exc)[:300]
    result.done_at = time.perf_counter() - origin
    return result


async def with_retries(
    client: httpx.AsyncClient,
    config: Any,
    spec: RequestSpec,
    origin: float,
    deadline: float,
    on_result: Callable[[RequestResult], None],
    user: int | None = None,
) -> RequestResult:
    """Sends `spec`, and after a 429 / 503 with `Retry-After` waits that long
    and sends it again, up to `config.retries` times, as a polite client does;
    never past `deadline` (a perf_counter time). Every attempt is reported;
    the last is returned."""
    for attempt in range(1, config.retries + 2):
        result = await timed_request(client, config, spec, origin)
        result.user, result.attempt = user, attempt
        on_result(result)
        if attempt > config.retries or not await honour_retry_after(result, deadline):
            break
    return result


async def honour_retry_after(result: RequestResult, deadline: float) -> bool:
    """Waits as a refusal's Retry-After asks; whether it did (False: not a
    refusal with one, or the wait would pass `deadline`)."""
    wait = result.retry_after
    if (
        result.error not in RETRIED_STATUSES
        or wait is None
        or time.perf_counter() + wait >= deadline
    ):
        return False
    await asyncio.sleep(wait)
    return True
