"""The shipped registry, user files that extend it, and the errors of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_gen.errors import RegistryError
from mlx_gen.models.registry import load_registry, source_kind


def test_shipped_entries():
    registry = load_registry()
    assert list(registry)[:4] == ["demo", "tiny", "bench", "gpt-oss-20b-synthetic"]
    assert registry["demo"].kind == "synthetic"
    assert registry["demo"].synthetic_preset == "tiny"
    assert registry["bench"].synthetic_preset == "bench"
    assert registry["gpt-oss-20b-synthetic"].synthetic_preset == "gpt-oss-20b"
    hub = {
        "gpt-oss-20b": "mlx-community/gpt-oss-20b-MXFP4-Q8",
        "gpt-oss-20b-4bit": "mlx-community/gpt-oss-20b-4bit",
        "gpt-oss-20b-8bit": "mlx-community/gpt-oss-20b-8bit",
    }
    for name, repo in hub.items():
        assert registry[name].kind == "hub"
        assert registry[name].source == repo
        assert registry[name].context_length == 131072
    assert registry["gpt-oss-20b-4bit"].quantization == "4bit"
    assert registry["gpt-oss-20b"].reasoning_effort == "medium"
    assert registry["gpt-oss-20b"].sampling.temperature == 1.0


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("synthetic:tiny", "synthetic"),
        ("mlx-community/gpt-oss-20b-4bit", "hub"),
        ("/models/gpt", "path"),
        ("./models/gpt", "path"),
        ("../gpt", "path"),
        ("~/models/gpt", "path"),
    ],
)
def test_source_kinds(source: str, kind: str):
    assert source_kind(source) == kind


@pytest.mark.parametrize("source", ["gpt-oss", "synthetic:", "a/b/c", ""])
def test_sources_that_are_none_of_the_kinds(source: str):
    with pytest.raises(ValueError, match="source must be"):
        source_kind(source)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_user_file_adds_and_overrides(tmp_path: Path):
    user = write(
        tmp_path / "models.toml",
        """
[models.mine]
source = "./weights/mine"
quantization = "8bit"
context_length = 2048
reasoning_effort = "high"

[models.gpt-oss-20b]
context_length = 32768
sampling = { temperature = 0.6 }
""",
    )
    registry = load_registry(user)

    mine = registry["mine"]
    assert mine.kind == "path"
    # Relative to the file that names it, not to the working directory.
    assert mine.local_path == (tmp_path / "weights" / "mine").resolve()
    assert (mine.reasoning_effort, mine.sampling.top_p) == ("high", 1.0)

    gpt = registry["gpt-oss-20b"]
    assert gpt.context_length == 32768
    assert gpt.source == "mlx-community/gpt-oss-20b-MXFP4-Q8"  # kept from shipped
    assert (gpt.sampling.temperature, gpt.sampling.top_p) == (0.6, 1.0)
    assert list(registry)[-1] == "mine"
    assert "demo" in registry


def error_of(user: Path) -> str:
    with pytest.raises(RegistryError) as exc:
        load_registry(user)
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_invalid_toml(tmp_path: Path):
    user = write(tmp_path / "bad.toml", "[models.x\nsource = 1\n")
    message = error_of(user)
    assert str(user) in message
    assert "invalid TOML" in message


@pytest.mark.parametrize(
    ("table", "named"),
    [
        (
            'source = "a/b"\nquantization = "4bit"\ncontext_length = "big"',
            "context_length",
        ),
        ('source = "a/b"\nquantization = "4bit"\ncontext_length = 8', "context_length"),
        (
            'source = "a/b"\nquantization = "4bit"\ncontext_length = 64\ncolour = 1',
            "colour",
        ),
        ('source = "nowhere"\nquantization = "4bit"\ncontext_length = 64', "source"),
        ('source = "a/b"\ncontext_length = 64', "quantization"),
        (
            'source = "a/b"\nquantization = "q"\ncontext_length = 64\n'
            'reasoning_effort = "extreme"',
            "reasoning_effort",
        ),
        (
            'source = "a/b"\nquantization = "q"\ncontext_length = 64\n'
            "sampling = { top_p = 0 }",
            "sampling.top_p",
        ),
    ],
)
def test_invalid_entry_names_model_and_field(tmp_path: Path, table: str, named: str):
    user = write(tmp_path / "bad.toml", f"[models.broken]\n{table}\n")
    message = error_of(user)
    assert f"models.broken.{named}" in message
    assert str(user) in message


def test_top_level_key_other_than_models(tmp_path: Path):
    message = error_of(write(tmp_path / "bad.toml", "[model.typo]\nsource = 'a/b'\n"))
    assert "'model'" in message


def test_entry_that_is_not_a_table(tmp_path: Path):
    message = error_of(write(tmp_path / "bad.toml", "[models]\nmine = 'a/b'\n"))
    assert "models.mine" in message


def test_missing_user_file(tmp_path: Path):
    message = error_of(tmp_path / "absent.toml")
    assert "not found" in message
