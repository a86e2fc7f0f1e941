"""`mlx-gen render FILE`: a conversation file to the exact prompt text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlx_gen.chat import render_conversation_file


def test_conversation_file_renders_with_its_tools_and_effort(
    tmp_path: Path, harmony_tokenizer: Any
) -> None:
    path = tmp_path / "chat.json"
    conversation = {
        "messages": [{"role": "user", "content": "Time?"}],
        "tools": [{"type": "function", "function": {"name": "now"}}],
        "reasoning_effort": "low",
    }
    path.write_text(json.dumps(conversation))
    text = render_conversation_file(path, harmony_tokenizer, today="2026-01-02")
    assert text == (
        "<|start|>system<|message|>"
        "You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\n"
        "Current date: 2026-01-02\n"
        "\n"
        "Reasoning: low\n"
        "\n"
        "# Valid channels: analysis, commentary, final. "
        "Channel must be included for every message.\n"
        "Calls to these tools must go to the commentary channel: 'functions'.<|end|>"
        "<|start|>developer<|message|># Tools\n"
        "\n"
        "## functions\n"
        "\n"
        "namespace functions {\n"
        "\n"
        "type now = () => any;\n"
        "\n"
        "} // namespace functions<|end|>"
        "<|start|>user<|message|>Time?<|end|>"
        "<|start|>assistant"
    )


def test_a_bare_message_list_uses_the_default_effort(
    tmp_path: Path, harmony_tokenizer: Any
) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([{"role": "user", "content": "Hi"}]))
    text = render_conversation_file(path, harmony_tokenizer, default_effort="high")
    assert "\nReasoning: high\n" in text
    assert text.endswith("<|start|>user<|message|>Hi<|end|><|start|>assistant")


@pytest.mark.parametrize(
    "content",
    [
        '{"messages": "not a list"}',
        '{"messages": [], "tools": {"x": 1}}',
        '"just a string"',
        "{not json",
    ],
)
def test_malformed_files_are_value_errors(
    tmp_path: Path, harmony_tokenizer: Any, content: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        render_conversation_file(path, harmony_tokenizer)
