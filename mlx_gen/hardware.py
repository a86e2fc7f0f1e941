"""The machine this process runs on, as every report names it.

One description for `mlx-gen bench engine`, `mlx-gen bench serve` (the client's
side) and the benchmark suite: the accelerator first, in plain words, then the
CPU, memory, BLAS and the versions that produced the figures.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlx_gen.blas import blas_in_use

# The distribution's name ("mlx-gen" on PyPI is another project).
DISTRIBUTION = "mlx-gen-server"


def hardware() -> dict[str, Any]:
    """Where figures come from; imports mlx."""
    import mlx.core as mx

    metal = mx.metal.is_available()
    info = mx.device_info()
    return {
        "accelerator": "Apple Silicon GPU (Metal)" if metal else "CPU only (no Metal)",
        "metal": metal,
        "apple_silicon": platform.system() == "Darwin"
        and platform.machine() == "arm64",
        "device": str(info.get("device_name", mx.default_device())),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_bytes": info.get("memory_size") or ram_bytes(),
        "blas": blas_in_use(),
        "platform": platform.platform(),
        "mlx": mx.__version__,
        "mlx_lm": package_version("mlx-lm"),
        "mlx_gen": package_version(DISTRIBUTION),
    }


def cpu_model() -> str:
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows)
        return None


def package_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
