"""Test-only fault injection: off unless MLX_GEN_TEST_FAULT_USER is set at start.

The reliability suites make the engine of a real server process fail for the
requests they choose. `mlx-gen serve` reads the variable once, at start, and
logs a warning when it is set; it is no setting, flag or config key, so no
configuration turns it on. Its value is a marker of 16 characters or more (a
shorter one is ignored), so that no ordinary `user` value matches by chance.

- `user` equal to the marker: the request's logits processor raises after two
  tokens, on the engine thread; the engine ends that request alone with an
  error (an in-stream error frame for a stream) and serves the others.
- `user` equal to the marker + ":kill-engine": it raises an exception that is
  not an Exception, which kills the engine thread, as a bug in it would.

Never set it in production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from mlx_gen.engine.types import GenerationRequest
from mlx_gen.server.hooks import RequestHook

FAULT_USER_ENV = "MLX_GEN_TEST_FAULT_USER"
KILL_SUFFIX = ":kill-engine"
MIN_MARKER_LENGTH = 16
TOKENS_BEFORE_FAULT = 2

logger = logging.getLogger("mlx_gen.server")


class InjectedFault(RuntimeError):
    """Raised for a request whose `user` is the marker."""


class InjectedEngineDeath(BaseException):
    """Not an Exception: nothing in the engine may catch it."""


def marker_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    marker = environ.get(FAULT_USER_ENV, "")
    if not marker:
        return None
    if len(marker) < MIN_MARKER_LENGTH:
        logger.warning(
            "%s ignored: the marker must have %d characters or more",
            FAULT_USER_ENV,
            MIN_MARKER_LENGTH,
        )
        return None
    logger.warning(
        "fault injection is ON (%s): requests with that user fail on purpose; "
        "this is for tests only",
        FAULT_USER_ENV,
    )
    return marker


def fault_hook(marker: str) -> RequestHook:
    """Make a request fail in the engine if its `user` names a fault."""

    def arm(request: GenerationRequest) -> None:
        fault: BaseException
        if request.user == marker:
            fault = InjectedFault(f"fault injected by {FAULT_USER_ENV}")
        elif request.user == marker + KILL_SUFFIX:
            fault = InjectedEngineDeath(f"engine killed by {FAULT_USER_ENV}")
        else:
            return
        prompt_len = len(request.prompt_token_ids)

        def fail(tokens: Any, logits: Any) -> Any:
            if tokens.size - prompt_len >= TOKENS_BEFORE_FAULT:
                raise fault
            return logits

        request.logits_processors.append(fail)

    return arm


def hook_from_env(environ: Mapping[str, str] = os.environ) -> RequestHook | None:
    """The fault hook `mlx-gen serve` installs, if the variable asks for one."""
    marker = marker_from_env(environ)
    return fault_hook(marker) if marker is not None else None
