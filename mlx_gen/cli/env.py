"""`mlx-gen env`: what this machine gives MLX, for bug reports and benchmarks."""

from __future__ import annotations

import argparse
import platform
import sys

from mlx_gen.blas import blas_in_use
from mlx_gen.hardware import DISTRIBUTION, package_version
from mlx_gen.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    import mlx.core as mx

    rows = [
        ("platform", platform.platform()),
        ("python", sys.version.split()[0]),
        ("mlx", mx.__version__),
        ("mlx-lm", package_version("mlx-lm")),
        ("mlx-gen", package_version(DISTRIBUTION)),
        ("device", str(mx.default_device())),
        ("metal", "available" if mx.metal.is_available() else "not available"),
        ("blas", blas_in_use()),
        ("cache dir", str(settings.cache_dir)),
    ]
    # Plain lines, never wrapped: this output is pasted into reports and grepped.
    for key, value in rows:
        print(f"{key:<10} {value}")
    return 0
