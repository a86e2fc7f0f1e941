"""Seeing exactly what the model is sent: POST /tokenize and `mlx-gen render`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_gen.chat.base import ChatFormat, Message, ReasoningEffort, Tool
from mlx_gen.chat.formats import format_for


def inspect_prompt(
    chat_format: ChatFormat,
    tokenizer: Any,
    messages: list[Message],
    tools: list[Tool] | None = None,
    reasoning_effort: ReasoningEffort | None = None,
) -> dict[str, Any]:
    """The rendered prompt, its ids and each id's own text, ready for JSON."""
    prompt = chat_format.render(messages, tools, reasoning_effort)
    return {
        "format": chat_format.name,
        "text": prompt.text,
        "token_ids": prompt.token_ids,
        "tokens": [tokenizer.decode([i]) for i in prompt.token_ids],
        "count": len(prompt.token_ids),
    }


def load_conversation(path: str | Path) -> dict[str, Any]:
    """Read {"messages": [...], "tools"?: [...], "reasoning_effort"?: ...}."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'messages' list")
    tools = data.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ValueError(f"{path}: 'tools' must be a list")
    return data


def render_conversation_file(
    path: str | Path,
    tokenizer: Any,
    default_effort: ReasoningEffort = "medium",
    today: str | None = None,
) -> str:
    """The prompt text the model would be given for a conversation file."""
    data = load_conversation(path)
    chat_format = format_for(tokenizer, default_effort=default_effort, today=today)
    prompt = chat_format.render(
        data["messages"], data.get("tools"), data.get("reasoning_effort")
    )
    return prompt.text
