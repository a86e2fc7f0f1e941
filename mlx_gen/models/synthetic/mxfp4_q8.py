"""Random weights written straight as MXFP4-Q8: how the full-size GPT-OSS-20B
shape (presets.GPT_OSS_20B) is built.

The layout is the community MXFP4-Q8 conversion's: MXFP4 experts (group 32)
and 8-bit affine (group 64) for everything else, norms, biases and sinks in
bfloat16, several safetensors shards with an index. About 12 GB, written
tensor by tensor straight from random packed codes: no float weight is ever
computed, so building it needs well under the model's size in memory.

The names, shapes, dtypes and quantization config are not written down here:
they come from running mlx-lm's own quantization on a lazy model of the shape
(nothing is evaluated), so they match what `mlx_lm.load` expects by
construction.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

EXPERT_QUANTIZATION = {"group_size": 32, "bits": 4, "mode": "mxfp4"}
DENSE_GROUP_SIZE = 64
DENSE_BITS = 8
# mlx-lm's converter shards at 5 GiB.
SHARD_BYTES = 5 << 30

# Dequantized weights should look like N(0, 0.02). Uniform random 8-bit codes
# have standard deviation 255 / sqrt(12) around a mean of 127.5.
_WEIGHT_STD = 0.02
_AFFINE_STEP = _WEIGHT_STD / (255 / math.sqrt(12))
# E8M0 exponents 2^-8 and 2^-7: random E2M1 codes (RMS ~2.9) then span
# roughly the same range.
_E8M0_CODES = (119, 120)
_CHUNK_WORDS = 16 << 20

Layout = dict[str, tuple[tuple[int, ...], str]]

_SAFETENSORS_DTYPES = {"uint32": "U32", "uint8": "U8", "bfloat16": "BF16"}


def write_weights(
    out_dir: Path, seed: int, config: dict[str, Any], shard_bytes: int | None = None
) -> Path:
    """The shards, their index and config.json of the float model `config`
    describes, as MXFP4-Q8 random weights; the tokenizer is the caller's."""
    layout, config = quantized_layout(config)
    shards = _plan_shards(layout, shard_bytes or SHARD_BYTES)
    weight_map: dict[str, str] = {}
    for index, names in enumerate(shards, start=1):
        file_name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
        with open(out_dir / file_name, "wb") as f:
            _write_safetensors(f, {name: layout[name] for name in names}, seed)
        weight_map.update(dict.fromkeys(names, file_name))
    total = sum(_nbytes(shape, dtype) for shape, dtype in layout.values())
    index_json = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(
        json.dumps(index_json, indent=4)
    )
    # config.json last: its presence is what marks a finished model.
    (out_dir / "config.json").write_text(json.dumps(config, indent=4))
    return out_dir


def quantized_layout(config: dict[str, Any]) -> tuple[Layout, dict[str, Any]]:
    """Each stored tensor's shape and dtype, and the config.json, of the float
    GPT-OSS model `config` describes.

    Replays the conversion of the original checkpoint on a lazy model: the
    experts arrive as MXFP4, then mlx-lm's `quantize_model` (with gpt_oss's
    own predicate, 8-bit router) quantizes the rest to 8-bit affine and
    records each layer in the config the way its converter saves it.
    """
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.models import gpt_oss
    from mlx_lm.utils import quantize_model

    config = dict(config)
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(config))
    nn.quantize(
        model,
        class_predicate=lambda path, m: (
            hasattr(m, "to_quantized") and ".mlp.experts." in path
        ),
        **EXPERT_QUANTIZATION,
    )
    config["quantization"] = dict(EXPERT_QUANTIZATION)
    # It prints a bits-per-weight figure that means nothing for a lazy model.
    with contextlib.redirect_stdout(io.StringIO()):
        model, config = quantize_model(
            model, config, DENSE_GROUP_SIZE, DENSE_BITS, mode="affine"
        )
    config["torch_dtype"] = "bfloat16"
    layout: Layout = {}
    for name, array in tree_flatten(model.parameters()):
        floating = mx.issubdtype(array.dtype, mx.floating)
        dtype = "bfloat16" if floating else str(array.dtype).removeprefix("mlx.core.")
        layout[name] = (tuple(array.shape), dtype)
    return layout, dict(sorted(config.items()))


def _nbytes(shape: tuple[int, ...], dtype: str) -> int:
    return math.prod(shape) * {"uint32": 4, "uint8": 1, "bfloat16": 2}[dtype]


def _plan_shards(layout: Layout, shard_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for name, (shape, dtype) in layout.items():
        nbytes = _nbytes(shape, dtype)
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def _write_safetensors(f: BinaryIO, layout: Layout, seed: int) -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "mlx"}}
    offset = 0
    for name, (shape, dtype) in layout.items():
        end = offset + _nbytes(shape, dtype)
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, end],
        }
        offset = end
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns data to 8 bytes
    f.write(len(encoded).to_bytes(8, "little"))
    f.write(encoded)
    for name, (shape, dtype) in layout.items():
        for chunk in _tensor_chunks(name, shape, dtype, seed):
            f.write(memoryview(np.ascontiguousarray(chunk)))


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _tensor_chunks(
    name: str, shape: tuple[int, ...], dtype: str, seed: int
) -> Iterator[np.ndarray]:
    """The bytes of one tensor, in pieces small enough to keep the build lean."""
    rng = _rng(seed, name)
    count = math.prod(shape)
    if dtype == "uint32":
        # Packed codes: every 4-bit pattern is a finite E2M1 value and every
        # byte a valid affine code, so uniform random words are valid weights.
        for start in range(0, count, _CHUNK_WORDS):
            size = min(_CHUNK_WORDS, count - start)
            yield rng.integers(0, 1 << 32, size, dtype=np.uint32)
    elif dtype == "uint8":
        yield rng.choice(np.array(_E8M0_CODES, dtype=np.uint8), count)
    else:
        yield _to_bfloat16(_float_values(name, shape, seed, rng))


def _float_values(
    name: str, shape: tuple[int, ...], seed: int, rng: np.random.Generator
) -> np.ndarray:
    if name.endswith(".scales"):
        return _affine_scales(name, shape, seed)
    if name.endswith(".biases"):
        # Centre each group's codes on zero.
        return -127.5 * _affine_scales(
            name.removesuffix("biases") + "scales", shape, seed
        )
    if name.endswith("norm.weight"):
        return 1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)
    if name.endswith(".bias"):
        return _WEIGHT_STD * rng.standard_normal(shape, dtype=np.float32)
    if name.endswith(".sinks"):
        # Nonzero, as in presets.py: zeros would leave the sink path idle.
        return 0.5 * rng.standard_normal(shape, dtype=np.float32)
    raise ValueError(
        f"{name} would be stored unquantized: is a dimension of the preset "
        "not divisible by the group size?"
    )


def _affine_scales(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    jitter = _rng(seed, name).uniform(0.8, 1.2, shape).astype(np.float32)
    return _AFFINE_STEP * jitter


def _to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 to bfloat16 bits (as uint16), rounding to nearest even."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)
