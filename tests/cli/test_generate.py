"""`mlx-gen generate`: one prompt, the answer on stdout, speed on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import run_cli

from cli.helpers import run_main


def test_generate_demo_offline_in_a_child_process(tmp_path: Path):
    result = run_cli(
        tmp_path,
        "generate",
        "--model",
        "demo",
        "--prompt",
        "hello",
        "--max-tokens",
        "16",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "decode " in result.stderr
    assert "tok/s" in result.stderr
    assert "peak memory" in result.stderr
    # Built from nothing into the cache it was given: no download.
    built = list((tmp_path / "cache" / "synthetic").glob("tiny-*/model.safetensors"))
    assert len(built) == 1


def test_same_seed_same_text(capsys: pytest.CaptureFixture[str]):
    args = ("generate", "--prompt", "hello", "--max-tokens", "12", "--seed", "7")
    first = run_main(capsys, *args)
    second = run_main(capsys, *args)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]
