"""OpenBLAS re-exec: when it happens, that it happens once, and what the child runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import cli_env, run_cli

from mlx_gen.blas import (
    REEXEC_MARKER,
    blas_in_use,
    bundled_reference_blas,
    find_openblas,
    reexec_target,
)

OPENBLAS = find_openblas()
needs_both = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or OPENBLAS is None
    or bundled_reference_blas() is None,
    reason="needs Linux, mlx[cpu]'s bundled BLAS and Debian's OpenBLAS",
)
NOTICE = "mlx-gen: using OpenBLAS"


def blas_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("blas "))


@needs_both
def test_reexec_target_only_when_it_helps():
    assert reexec_target({}) == OPENBLAS
    assert reexec_target({REEXEC_MARKER: "1"}) is None  # already the child
    assert reexec_target({"LD_PRELOAD": str(OPENBLAS)}) is None  # already preloaded
    assert reexec_target({"LD_PRELOAD": "/usr/lib/libfoo.so"}) == OPENBLAS


@needs_both
def test_blas_in_use_in_this_process():
    preloaded = str(OPENBLAS) in os.environ.get("LD_PRELOAD", "")
    in_use = blas_in_use()
    if preloaded:
        assert in_use == str(OPENBLAS)
    else:
        assert in_use == f"{bundled_reference_blas()} (reference BLAS)"


@needs_both
def test_cli_reexecs_once_with_openblas(tmp_path: Path):
    result = run_cli(tmp_path, "env", MLX_GEN_USE_OPENBLAS="1")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(NOTICE) == 1
    # The child resolves cblas_sgemm to OpenBLAS, not to the bundled library.
    assert blas_line(result.stdout).split(maxsplit=1)[1] == str(OPENBLAS)


@needs_both
@pytest.mark.parametrize(
    ("args", "env"),
    [
        ((), {"MLX_GEN_USE_OPENBLAS": "0"}),
        (("--no-use-openblas",), {"MLX_GEN_USE_OPENBLAS": "1"}),
        ((), {"MLX_GEN_USE_OPENBLAS": "1", REEXEC_MARKER: "1"}),
    ],
    ids=["env-off", "flag-off", "already-child"],
)
def test_cli_without_reexec_keeps_the_reference_blas(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
):
    result = run_cli(tmp_path, "env", *args, **env)
    assert result.returncode == 0, result.stderr
    assert NOTICE not in result.stderr
    assert "(reference BLAS)" in blas_line(result.stdout)


@needs_both
def test_python_dash_m_reexecs_with_its_own_arguments(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mlx_gen", "env"],
        cwd=tmp_path,
        env=cli_env(tmp_path, MLX_GEN_USE_OPENBLAS="1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(NOTICE) == 1
    assert blas_line(result.stdout).split(maxsplit=1)[1] == str(OPENBLAS)


def test_commands_that_do_not_compute_never_reexec(tmp_path: Path):
    result = run_cli(tmp_path, "models", MLX_GEN_USE_OPENBLAS="1")
    assert result.returncode == 0, result.stderr
    assert NOTICE not in result.stderr
