"""Shared fixtures: synthetic models, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_gen.synthetic import ensure_model


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run tests marked slow (the full-size gpt-oss-20b shape)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def tiny_model_path(synthetic_cache: Path) -> Path:
    return ensure_model("tiny", cache_dir=synthetic_cache)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path):
    """(model, TokenizerWrapper) of the tiny preset, float32, loaded once."""
    import mlx_lm

    return mlx_lm.load(str(tiny_model_path))
