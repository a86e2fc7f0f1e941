"""Reliability fixtures: the tiny model built once, servers as processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlx_gen.models.synthetic.presets import ensure_model

from .server_process import MODEL, ServerProcess

Launch = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def server_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir with the tiny model already built, shared by every server."""
    cache = tmp_path_factory.mktemp("reliability-cache")
    ensure_model(MODEL, cache_dir=cache / "synthetic")
    return cache


@pytest.fixture(scope="module")
def launch(
    server_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launch]:
    """Start `mlx-gen serve` with these flags; every one is stopped at the end."""
    started: list[ServerProcess] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> ServerProcess:
        workdir = tmp_path_factory.mktemp("server")
        started.append(ServerProcess(workdir, server_cache, flags, env))
        return started[-1].start()

    yield start
    for server in started:
        server.stop()
