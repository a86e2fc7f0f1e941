"""`mlx-gen render FILE`: the exact prompt a conversation renders to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.helpers import one_line_error, run_main


def test_render_prints_the_harmony_prompt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    conversation = tmp_path / "chat.json"
    conversation.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    )
    code, out, _ = run_main(
        capsys, "render", str(conversation), "--reasoning-effort", "high"
    )
    assert code == 0
    assert "Reasoning: high" in out
    assert out.rstrip().endswith(
        "<|start|>user<|message|>hello<|end|><|start|>assistant"
    )


def test_render_of_a_bad_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    conversation = tmp_path / "chat.json"
    conversation.write_text("[not json")
    code, _, err = run_main(capsys, "render", str(conversation))
    assert f"cannot render {conversation}" in one_line_error(code, err, 1)
