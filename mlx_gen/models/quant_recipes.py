"""What each layer of a converted model becomes: the quantization recipes.

A recipe gives every quantizable layer a mode, bit width and group size by its
path: uniform affine 4 or 8 bits, uniform MXFP4, or the community GPT-OSS
layout (MXFP4 experts, 8-bit affine everything else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlx_gen.errors import ConvertError


@dataclass(frozen=True)
class Quant:
    mode: str
    bits: int
    group_size: int

    def params(self) -> dict[str, Any]:
        return {"group_size": self.group_size, "bits": self.bits, "mode": self.mode}

    def __str__(self) -> str:
        if self.mode == "affine":
            return f"{self.bits}-bit affine g{self.group_size}"
        return f"{self.mode} g{self.group_size}"


# mlx-lm's GPT-OSS rule, kept by every recipe: the router is small and sensitive.
ROUTER_QUANT = Quant("affine", 8, 64)


@dataclass(frozen=True)
class Recipe:
    name: str
    default: Quant
    experts: Quant

    def for_path(self, path: str) -> Quant:
        if ".mlp.experts." in path:
            return self.experts
        if path.endswith(".mlp.router"):
            return ROUTER_QUANT
        return self.default


def make_recipe(
    bits: int | None = None,
    group_size: int | None = None,
    mode: str | None = None,
    recipe: str | None = None,
) -> Recipe:
    """The recipe the command-line options describe; ConvertError if they clash."""
    if recipe == "mxfp4-q8":
        if bits is not None or group_size is not None or mode is not None:
            raise ConvertError(
                "--recipe mxfp4-q8 sets bits, group size and mode itself: "
                "drop --bits, --group-size and --mode"
            )
        # The community GPT-OSS layout: MXFP4 experts, 8-bit affine elsewhere.
        return Recipe("mxfp4-q8", Quant("affine", 8, 64), Quant("mxfp4", 4, 32))
    if recipe is not None:
        raise ConvertError(f"unknown recipe {recipe!r} (known: mxfp4-q8)")
    mode = mode or "affine"
    if mode == "mxfp4":
        if bits not in (None, 4) or group_size not in (None, 32):
            raise ConvertError("--mode mxfp4 means 4 bits in groups of 32")
        quant = Quant("mxfp4", 4, 32)
        return Recipe("mxfp4", quant, quant)
    if mode != "affine":
        raise ConvertError(f"unknown mode {mode!r} (known: affine, mxfp4)")
    bits = 4 if bits is None else bits
    group_size = 64 if group_size is None else group_size
    if bits not in (4, 8):
        raise ConvertError(f"--bits must be 4 or 8, not {bits}")
    if group_size not in (32, 64, 128):
        raise ConvertError(f"--group-size must be 32, 64 or 128, not {group_size}")
    quant = Quant("affine", bits, group_size)
    return Recipe(f"affine-{bits}", quant, quant)
