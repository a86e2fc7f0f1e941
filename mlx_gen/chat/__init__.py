"""Chat formats: messages to prompt ids; generated ids to reasoning, content, tools."""

from __future__ import annotations

from mlx_gen.chat.answer import collect
from mlx_gen.chat.formats import format_for
from mlx_gen.chat.harmony import HarmonyFormat
from mlx_gen.chat.inspection import render_conversation_file
from mlx_gen.chat.template import TemplateFormat

__all__ = [
    "HarmonyFormat",
    "TemplateFormat",
    "collect",
    "format_for",
    "render_conversation_file",
]
