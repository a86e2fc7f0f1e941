"""Fixtures of the server tests: the tiny model's tokenizer and harmony format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_path: Path) -> Any:
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(tiny_model_path)


@pytest.fixture(scope="session")
def harmony(tiny_tokenizer: Any) -> Any:
    from mlx_gen.chat import format_for

    return format_for(tiny_tokenizer, today="2026-01-01")
