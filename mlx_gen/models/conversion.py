"""Hugging Face checkpoint → MLX model directory, by way of mlx-lm's conversion.

mlx-lm loads (GPT-OSS's original MXFP4 `*_blocks` / `*_scales` experts
included), quantizes and saves. This module decides what each layer becomes
(the recipe), fixes the one layout mlx-lm 0.32 misreads (the unquantized
experts transformers writes), guards the output directory and the disk, and
leaves the proof that the result loads and generates to the command
(mlx_gen.cli.convert), which plans it as the engine would.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map_with_path
from mlx_lm.utils import (
    _get_classes,
    compute_bits_per_weight,
    dequantize_model,
    load_tokenizer,
    quantize_model,
    save,
)
from mlx_lm.utils import load_model as mlx_load_model

from mlx_gen.errors import ConvertError, one_line
from mlx_gen.models.hub import fetch_snapshot
from mlx_gen.models.loading import check_weights, read_config
from mlx_gen.models.quant_recipes import Quant, Recipe
from mlx_gen.models.registry import source_kind

DTYPES = ("float16", "bfloat16", "float32")
# Room for the tokenizer files, config and index beside the weights.
DISK_MARGIN_BYTES = 64 * 1024 * 1024


@dataclass
class ConvertResult:
    out_dir: Path
    source_dir: Path
    source_weights_bytes: int
    recipe: Recipe
    dtype: str | None
    bits_per_weight: float
    weights_bytes: int
    disk_bytes: int
    config: dict[str, Any]
    quantized: dict[str, int] = field(default_factory=dict)  # Quant text → modules
    unquantized: list[str] = field(default_factory=list)  # could be, but are not


def _transformers_experts(weights: dict[str, mx.array], args: Any) -> dict:
    """transformers stores unquantized GPT-OSS experts as [experts, in, out]
    under suffix-less names; mlx-lm 0.32's sanitize reads only [experts, out, in]
    (ml-explore/mlx-lm#1079). Turn them into the layout it reads."""
    fixed = {}
    for key, value in weights.items():
        if key.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj")):
            gate_up = key.endswith("gate_up_proj")
            in_dims = args.hidden_size if gate_up else args.intermediate_size
            if value.ndim != 3 or value.shape[1] != in_dims:
                raise ConvertError(
                    f"{key} has shape {tuple(value.shape)}: expected transformers'"
                    f" [experts, {in_dims}, ...] layout"
                )
            key, value = f"{key}.weight", value.swapaxes(-1, -2)
        fixed[key] = value
    return fixed


def _model_classes(config: dict[str, Any]) -> tuple[type, type]:
    model_class, args_class = _get_classes(config)
    if config.get("model_type") != "gpt_oss":
        return model_class, args_class

    class GptOssFromAnyLayout(model_class):
        def sanitize(self, weights: dict) -> dict:
            return super().sanitize(_transformers_experts(weights, self.args))

    return GptOssFromAnyLayout, args_class


def resolve_source(src: str) -> Path:
    """The local directory of `src`: a path, or a hub id fetched into the cache."""
    path = Path(src).expanduser()
    if path.is_dir():
        return path
    try:
        hub = source_kind(src) == "hub"
    except ValueError:
        hub = False
    if not hub:
        raise ConvertError(f"source not found: {src}")
    return fetch_snapshot(src)


def load_source(path: Path) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model, tokenizer, config) of a checkpoint, lazily: nothing is read yet."""
    read_config(path)  # a model directory, of an architecture mlx-lm has
    check_weights(path)  # no truncated shard
    try:
        model, config = mlx_load_model(
            path, lazy=True, get_model_classes=_model_classes
        )
        tokenizer = load_tokenizer(path, eos_token_ids=config.get("eos_token_id"))
    except (ValueError, OSError, KeyError) as exc:
        raise ConvertError(f"cannot load {path}: {one_line(exc)[:300]}") from None
    return model, tokenizer, config


def _quantized_modules(model: nn.Module) -> dict[str, Quant]:
    return {
        path: Quant(module.mode, module.bits, module.group_size)
        for path, module in model.named_modules()
        if "scales" in module and hasattr(module, "bits")
    }


def _cast(model: nn.Module, dtype: str) -> None:
    target = getattr(mx, dtype)
    keep = getattr(model, "cast_predicate", lambda _: True)

    def cast(path: str, value: mx.array) -> mx.array:
        if keep(path) and mx.issubdtype(value.dtype, mx.floating):
            return value.astype(target)
        return value

    model.update(tree_map_with_path(cast, model.parameters()))


def quantize(
    model: nn.Module, config: dict[str, Any], recipe: Recipe, dtype: str | None
) -> tuple[nn.Module, dict[str, Any]]:
    """Cast and quantize `model` (lazily) as `recipe` says; config gets every layer."""
    already = _quantized_modules(model)
    # Layers that already are what the recipe asks for (MXFP4 experts) stay
    # bit-exact; anything else is dequantized and quantized again.
    if any(quant != recipe.for_path(path) for path, quant in already.items()):
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    if dtype is not None:
        _cast(model, dtype)

    def predicate(path: str, module: nn.Module) -> bool | dict[str, Any]:
        quant = recipe.for_path(path)
        if module.weight.shape[-1] % quant.group_size:
            return False
        return quant.params()

    default = recipe.default
    with contextlib.redirect_stdout(io.StringIO()):  # mlx-lm prints its own summary
        model, config = quantize_model(
            model,
            config,
            default.group_size,
            default.bits,
            mode=default.mode,
            quant_predicate=predicate,
        )
    # Name every quantized layer, kept ones too, so no loader has to infer.
    layers = {p: q.params() for p, q in _quantized_modules(model).items()}
    config["quantization"] = {**default.params(), **layers}
    config["quantization_config"] = config["quantization"]
    return model, config


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def check_disk_space(out_dir: Path, needed: int) -> None:
    """ConvertError unless the file system of `out_dir` has `needed` bytes free."""
    parent = out_dir.resolve().parent
    while not parent.exists():  # the directories convert will create
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise ConvertError(
            f"not enough disk space in {parent}: the model needs about"
            f" {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB are free"
        )


def _materialize(model: nn.Module, on_bytes: Callable[[int, int], None]) -> None:
    """Compute the quantized weights one array at a time, reporting bytes done.

    The output is held in memory until saved: the same memory serving it takes.
    """
    arrays = [value for _, value in tree_flatten(model.parameters())]
    total = sum(a.nbytes for a in arrays)
    done = 0
    for array in arrays:
        mx.eval(array)
        done += array.nbytes
        on_bytes(done, total)


def convert(
    src: str,
    out: Path,
    recipe: Recipe,
    dtype: str | None = None,
    force: bool = False,
    on_stage: Callable[[str], None] = lambda _: None,
    on_bytes: Callable[[int, int], None] = lambda done, total: None,
) -> ConvertResult:
    """Convert `src` (a directory or hub id) into the MLX model directory `out`."""
    if dtype is not None and dtype not in DTYPES:
        raise ConvertError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype}")
    out = Path(out).expanduser()
    if out.exists() and not force:
        raise ConvertError(f"{out} already exists: pass --force to replace it")
    on_stage("Resolving source")
    source = resolve_source(src)
    if out.exists() and out.resolve() == source.resolve():
        raise ConvertError("the output directory is the source directory")
    on_stage("Loading")
    model, tokenizer, config = load_source(source)
    dtype = dtype or config.get("torch_dtype") or config.get("dtype")
    dtype = dtype if dtype in DTYPES else None  # else keep the checkpoint's own
    on_stage("Quantizing")
    model, config = quantize(model, config, recipe, dtype)
    weights_bytes = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    check_disk_space(out, weights_bytes + DISK_MARGIN_BYTES)
    quantized = _quantized_modules(model)
    unquantized = [p for p, m in model.named_modules() if hasattr(m, "to_quantized")]
    bits_per_weight = compute_bits_per_weight(model)
    on_stage("Writing")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside `out` and renamed: a failure never leaves half a model.
        staging = out.parent / f".{out.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _materialize(model, on_bytes)
            save(staging, source, model, tokenizer, config)
            if out.exists():
                shutil.rmtree(out)
            os.replace(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise ConvertError(f"cannot write {out}: {exc.strerror or exc}") from None
    return ConvertResult(
        out_dir=out,
        source_dir=source,
        source_weights_bytes=sum(
            f.stat().st_size for f in source.glob("model*.safetensors")
        ),
        recipe=recipe,
        dtype=dtype,
        bits_per_weight=bits_per_weight,
        weights_bytes=weights_bytes,
        disk_bytes=_dir_bytes(out),
        config=config,
        quantized=dict(Counter(str(q) for q in quantized.values())),
        unquantized=unquantized,
    )
