"""`mlx-gen models`: the registry as a table, with what is on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.helpers import run_main
from mlx_gen.models.registry import load_registry

SHIPPED = ["demo", "tiny", "bench", "gpt-oss-20b-synthetic", "gpt-oss-20b"]


def test_models_table(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_main(capsys, "models")
    assert code == 0
    assert "Models (default: demo)" in out
    for name in SHIPPED:
        assert any(line.split()[0] == name for line in rows(out))
    hub_row = row(out, "gpt-oss-20b-4bit")
    assert hub_row.split()[1:] == [
        "mlx-community/gpt-oss-20b-4bit",
        "4bit",
        "128K",
        "no",
    ]


def test_models_table_keeps_sources_readable_in_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(capsys, "models")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    registry = load_registry(None)
    for name in SHIPPED:
        # A long source folds onto the next line, never shrinks to nothing:
        # its first line holds at least 20 characters of it, or all of it.
        source = registry[name].source
        shown = row(out, name).split()[1]
        assert source.startswith(shown) and len(shown) >= min(20, len(source))


def rows(table: str) -> list[str]:
    """The table's rows (a folded cell continues on lines starting with spaces)."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("───")) + 1
    return [line for line in lines[start:] if line and not line.startswith(" ")]


def row(table: str, name: str) -> str:
    return next(line for line in rows(table) if line.split()[0] == name)


def test_models_shows_a_local_directory_and_its_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model_path: Path
):
    registry = tmp_path / "models.toml"
    registry.write_text(
        f'[models.house]\nsource = "{tiny_model_path}"\nquantization = "float32"\n'
        'context_length = 2048\n\n[models.lost]\nsource = "./lost"\n'
        'quantization = "4bit"\ncontext_length = 2048\n'
    )
    code, out, _ = run_main(capsys, "models", "--registry-file", str(registry))
    assert code == 0
    house = row(out, "house")
    assert "yes," in house
    assert "MB" in house or "kB" in house
    assert row(out, "lost").split()[-1] == "missing"


def test_models_shows_whether_a_synthetic_model_is_built(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLX_GEN_CACHE_DIR", str(tmp_path))
    before = row(run_main(capsys, "models")[1], "tiny")
    assert before.split()[-1] == "no"
    assert run_main(capsys, "generate", "--prompt", "hi", "--max-tokens", "2")[0] == 0
    after = row(run_main(capsys, "models")[1], "tiny")
    assert "yes," in after
    assert "MB" in after
