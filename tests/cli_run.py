"""Running the real `mlx-gen` command in a child process, isolated from this machine.

The child gets no MLX_GEN_* variables but those a test gives, a fresh working
directory, a synthetic cache and an empty, offline hub cache of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MLX_GEN = Path(sys.executable).with_name("mlx-gen")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLX_GEN_", "HF_")) and k != "LD_PRELOAD"
    }
    env.update(
        MLX_GEN_CACHE_DIR=str(home / "cache"),
        MLX_GEN_USE_OPENBLAS="0",
        HF_HUB_CACHE=str(home / "hub"),
        HF_HUB_OFFLINE="1",
        COLUMNS="200",
    )
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """`mlx-gen ARGS` with `home` as working directory; env entries override."""
    return subprocess.run(
        [str(MLX_GEN), *args],
        cwd=home,
        env=cli_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
