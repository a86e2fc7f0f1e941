"""OpenBLAS under MLX's CPU backend on Linux.

The Linux `mlx[cpu]` wheel bundles the reference (netlib) BLAS; with Debian's
OpenBLAS preloaded, float32 matmuls run about 18x faster with the same results.
A library can only be put first before the process starts, so the CLI
re-executes itself once with `LD_PRELOAD`. Never done at import time, and a
no-op on macOS (Accelerate) and wherever either library is missing.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

OPENBLAS_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"),
    Path("/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3"),
)
# Set in the re-executed child: one re-exec, never a loop.
REEXEC_MARKER = "MLX_GEN_OPENBLAS_REEXEC"


def find_openblas() -> Path | None:
    return next((p for p in OPENBLAS_CANDIDATES if p.is_file()), None)


def bundled_reference_blas() -> Path | None:
    """The reference BLAS that the mlx wheel carries, found without importing mlx."""
    spec = importlib.util.find_spec("mlx")
    if spec is None or not spec.submodule_search_locations:
        return None
    # mlx is a namespace package: look beside each of its directories.
    for location in spec.submodule_search_locations:
        for libs in sorted(Path(location).parent.glob("mlx*.libs")):
            found = sorted(libs.glob("libblas*.so*"))
            if found:
                return found[0]
    return None


def reexec_target(environ: Mapping[str, str]) -> Path | None:
    """The OpenBLAS to preload by re-executing, or None when there is nothing to do."""
    if not sys.platform.startswith("linux") or environ.get(REEXEC_MARKER):
        return None
    openblas = find_openblas()
    if openblas is None or bundled_reference_blas() is None:
        return None
    if str(openblas) in environ.get("LD_PRELOAD", ""):
        return None
    return openblas


def maybe_reexec_with_openblas(enabled: bool) -> None:
    """Re-execute this process once with OpenBLAS preloaded; for the CLI entry only."""
    openblas = reexec_target(os.environ) if enabled else None
    if openblas is None:
        return
    print(
        f"mlx-gen: using OpenBLAS ({openblas}) for CPU matmuls;"
        " MLX_GEN_USE_OPENBLAS=0 turns this off",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    previous = os.environ.get("LD_PRELOAD", "")
    os.environ["LD_PRELOAD"] = f"{openblas} {previous}".strip()
    os.environ[REEXEC_MARKER] = "1"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def blas_in_use() -> str:
    """The BLAS library whose `cblas_sgemm` MLX calls in this process."""
    if sys.platform == "darwin":
        return "Accelerate"
    if not sys.platform.startswith("linux"):
        return "unknown"
    import mlx.core  # noqa: F401  (loads MLX's libraries into this process)

    # A preloaded library wins symbol resolution over the one mlx links to; the
    # bundled BLAS is loaded privately, so without a preload none is global.
    preloaded = _global_symbol_file("cblas_sgemm")
    if preloaded is not None:
        return preloaded
    bundled = _mapped_file("libblas")
    return f"{bundled} (reference BLAS)" if bundled else "unknown"


def _global_symbol_file(symbol: str) -> str | None:
    process = ctypes.CDLL(None)
    try:
        address = ctypes.cast(getattr(process, symbol), ctypes.c_void_p)
    except AttributeError:
        return None
    info = _DlInfo()
    if not process.dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


def _mapped_file(fragment: str) -> str | None:
    """A file mapped into this process whose name contains `fragment`."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if fragment in Path(path).name:
            return path
    return None
