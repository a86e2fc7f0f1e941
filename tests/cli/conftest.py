"""Every command run here sees no MLX_GEN_* settings of this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture(autouse=True)
def clean_place(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No MLX_GEN_* settings from this machine; an empty working directory."""
    for name in list(os.environ):
        if name.startswith("MLX_GEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLX_GEN_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path
