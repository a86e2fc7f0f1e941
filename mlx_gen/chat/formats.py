"""Choosing a model's chat format: from its tokenizer, never from a request."""

from __future__ import annotations

import datetime
from typing import Any

from mlx_gen.chat.base import ChatFormat, ReasoningEffort
from mlx_gen.chat.harmony import HarmonyFormat
from mlx_gen.chat.harmony_tokens import control_token_ids
from mlx_gen.chat.template import TemplateFormat


def format_for(
    tokenizer: Any,
    default_effort: ReasoningEffort = "medium",
    today: datetime.date | str | None = None,
) -> ChatFormat:
    """The chat format of the model whose mlx-lm `TokenizerWrapper` this is.

    Harmony when the tokenizer carries the harmony control tokens, its chat
    template otherwise. `today` fixes harmony's `Current date:` (tests); None
    means the date of each render.
    """
    control_ids = control_token_ids(tokenizer)
    if control_ids is not None:
        return HarmonyFormat(tokenizer, control_ids, default_effort, today)
    return TemplateFormat(tokenizer, default_effort)
