"""Shared fixtures: synthetic models, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_gen.models.synthetic.presets import ensure_model


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


@pytest.fixture(scope="module")
def hf_checkpoint(tiny_model_path: Path, tmp_path_factory) -> Path:
    """The tiny model as a transformers checkpoint (tests/checkpoints.py)."""
    from checkpoints import write_hf_checkpoint

    return write_hf_checkpoint(tmp_path_factory.mktemp("src") / "hf", tiny_model_path)


@pytest.fixture(scope="module")
def mxfp4_checkpoint(tiny_model_path: Path, tmp_path_factory) -> Path:
    """The tiny model in OpenAI's original MXFP4 layout (tests/checkpoints.py)."""
    from checkpoints import write_mxfp4_checkpoint

    out = tmp_path_factory.mktemp("src") / "mxfp4"
    return write_mxfp4_checkpoint(out, tiny_model_path)
