"""`mlx-gen render FILE`: the exact prompt a conversation file gives the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_gen.chat.base import ReasoningEffort
from mlx_gen.chat.formats import format_for


def load_conversation(path: str | Path) -> dict[str, Any]:
    """Read {"messages": [...], "tools"?: [...], "reasoning_effort"?: ...}.

    A bare list is taken as the messages.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        data = {"messages": data}
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
