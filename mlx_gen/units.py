"""Sizes of memory and disk in one unit system: decimal, GB = 10**9 bytes.

The targets ("under 16 GB"), the settings (`memory_budget_gb`), macOS's own
figures and disk sizes all speak decimal units, so every number mlx-gen takes
or prints means the same thing.
"""

from __future__ import annotations

GB = 10**9
MB = 10**6
KB = 10**3


def format_bytes(n: float | None) -> str:
    """1234567890 -> "1.23 GB"; None -> "-"."""
    if n is None:
        return "-"
    for unit, scale in (("GB", GB), ("MB", MB), ("kB", KB)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"
