"""Whether the server takes generation requests: warm-up, draining, a dead engine.

Readiness is true only once one tiny generation went through the engine, and
turns false for good when the server starts draining or the engine dies.
"""

from __future__ import annotations

import logging

from mlx_gen.engine.types import GenerationRequest, SamplingParams
from mlx_gen.server.errors import APIError, unavailable
from mlx_gen.server.served import Engine
from mlx_gen.server.state import AppState

logger = logging.getLogger("mlx_gen.server")


def draining_error() -> APIError:
    return unavailable(
        "The server is shutting down and takes no new requests.",
        code="shutting_down",
        retry_after=5,
    )


def not_ready_reason(state: AppState) -> APIError | None:
    stats = state.served.engine.stats()
    if not stats.alive:
        return unavailable(
            f"The generation engine has stopped: {stats.error or 'unknown error'}",
            code="engine_dead",
        )
    if state.draining:
        return draining_error()
    if not state.warmed:
        detail = state.warmup_error or "the model is warming up"
        return unavailable(f"Not ready: {detail}.", code="not_ready", retry_after=1)
    return None


async def warm_up(state: AppState, engine: Engine) -> None:
    """One tiny generation, so the first real request meets a warm engine.
    `engine` is the served one without any test hook."""
    served = state.served
    prompt = served.chat_format.render([{"role": "user", "content": "Hi"}])
    sampling = SamplingParams(
        max_tokens=1,
        temperature=0.0,
        stop_token_ids=list(served.chat_format.stop_token_ids),
    )
    request = GenerationRequest(prompt.token_ids, sampling, request_id="warm-up")
    try:
        async for event in engine.submit(request):
            if event.finish_reason == "error":
                raise RuntimeError(event.error or "engine error")
    except Exception as exc:
        state.warmup_error = f"warm-up failed: {exc}"
        logger.error("warm-up failed: %s", exc)
        return
    state.warmed = True
    logger.info("warm-up done: ready")
