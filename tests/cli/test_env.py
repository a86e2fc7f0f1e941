"""`mlx-gen env`: what this machine gives MLX, one plain line per fact."""

from __future__ import annotations

from importlib.metadata import version

import mlx.core as mx
import pytest

from cli.helpers import run_main


def test_env_names_the_versions_device_and_cache(
    capsys: pytest.CaptureFixture[str], shared_cache
):
    code, out, _ = run_main(capsys, "env")
    assert code == 0
    facts = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
    assert facts["mlx"] == mx.__version__
    assert facts["mlx-lm"] == version("mlx-lm")
    assert facts["mlx-gen"] == version("mlx-gen-server")
    assert facts["device"] == str(mx.default_device())
    assert out.splitlines()[-1] == f"cache dir  {shared_cache}"
