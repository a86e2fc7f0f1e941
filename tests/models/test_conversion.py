"""`mlx_gen.models.conversion`: from the two layouts GPT-OSS checkpoints come
in on the hub (tests/checkpoints.py) to MLX directories that load and generate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from checkpoints import mlx_weights

from mlx_gen.cli.convert import verify
from mlx_gen.errors import ConvertError
from mlx_gen.models.conversion import check_disk_space, convert
from mlx_gen.models.quant_recipes import make_recipe
from mlx_gen.settings import Settings

PROMPT = [5, 17, 42, 99, 7, 300]


def _logits(model, tokens: list[int]) -> np.ndarray:
    return np.array(model(mx.array([tokens]))[0, -1].astype(mx.float32))


def _load_float32(path: Path):
    import mlx_lm
    from mlx.utils import tree_map

    model, _ = mlx_lm.load(str(path))
    model.update(
        tree_map(
            lambda v: (
                v.astype(mx.float32) if mx.issubdtype(v.dtype, mx.floating) else v
            ),
            model.parameters(),
        )
    )
    return model


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


RECIPES = {
    "affine-4": {"bits": 4},
    "affine-8": {"bits": 8},
    "mxfp4": {"mode": "mxfp4"},
    "mxfp4-q8": {"recipe": "mxfp4-q8"},
}
# Cosine of the last-position logits against the float32 model the weights
# came from; a misread layout (e.g. an untransposed down_proj) gives about 0.4.
# The MXFP4 checkpoint's experts already carry MXFP4's error: 0.97 at best.
MIN_COSINE = {"affine-4": 0.9, "affine-8": 0.999, "mxfp4": 0.9, "mxfp4-q8": 0.97}
MXFP4_SOURCE_MAX_COSINE = 0.97


def _expected_layer_quant(recipe: str, path: str) -> dict:
    if ".mlp.experts." in path and recipe in ("mxfp4", "mxfp4-q8"):
        return {"group_size": 32, "bits": 4, "mode": "mxfp4"}
    if path.endswith("mlp.router") or recipe in ("affine-8", "mxfp4-q8"):
        return {"group_size": 64, "bits": 8, "mode": "affine"}
    if recipe == "mxfp4":
        return {"group_size": 32, "bits": 4, "mode": "mxfp4"}
    return {"group_size": 64, "bits": 4, "mode": "affine"}


def _check_converted(out: Path, recipe: str, layout: str, tiny_model_path: Path):
    """Every quantizable layer quantized as the recipe says; the model still the
    model the weights came from; and it generates."""
    config = json.loads((out / "config.json").read_text())
    layers = {k: v for k, v in config["quantization"].items() if isinstance(v, dict)}
    names = set(mx.load(str(out / "model.safetensors")))
    linear = {n.removesuffix(".weight") for n in names if n.endswith(".weight")}
    quantizable = {p for p in linear if "norm" not in p}
    assert set(layers) == quantizable
    assert all(f"{p}.scales" in names for p in quantizable)
    for path, params in layers.items():
        assert params == _expected_layer_quant(recipe, path), path
    reference = _logits(_load_float32(tiny_model_path), PROMPT)
    converted = _logits(_load_float32(out), PROMPT)
    floor = MIN_COSINE[recipe]
    if layout == "mxfp4":
        floor = min(floor, MXFP4_SOURCE_MAX_COSINE)
    assert _cosine(reference, converted) > floor


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("layout", ["hf", "mxfp4"])
def test_each_recipe_from_each_layout(
    recipe, layout, hf_checkpoint, mxfp4_checkpoint, tiny_model_path, tmp_path
):
    source = hf_checkpoint if layout == "hf" else mxfp4_checkpoint
    result = convert(str(source), tmp_path / "out", make_recipe(**RECIPES[recipe]))
    assert result.unquantized == []
    assert result.dtype == "bfloat16"  # the checkpoint's torch_dtype
    assert 4 < result.bits_per_weight < 9
    assert result.disk_bytes > result.weights_bytes > 0
    _check_converted(tmp_path / "out", recipe, layout, tiny_model_path)
    proof = verify(tmp_path / "out", Settings(), max_tokens=5)
    assert len(proof.token_ids) == 5


def test_mxfp4_experts_are_kept_bit_exact(mxfp4_checkpoint, tiny_model_path, tmp_path):
    """MXFP4 experts become MXFP4 layers without a lossy dequantize-requantize."""
    convert(str(mxfp4_checkpoint), tmp_path / "out", make_recipe(recipe="mxfp4-q8"))
    saved = mx.load(str(tmp_path / "out" / "model.safetensors"))
    source = mlx_weights(tiny_model_path)
    for name in ("gate_proj", "up_proj", "down_proj"):
        key = f"model.layers.1.mlp.experts.{name}"
        packed, scales = mx.quantize(
            source[f"{key}.weight"], group_size=32, bits=4, mode="mxfp4"
        )
        assert mx.array_equal(saved[f"{key}.weight"], packed)
        assert mx.array_equal(saved[f"{key}.scales"], scales)


def test_dtype_option_sets_unquantized_parameters(hf_checkpoint, tmp_path):
    recipe = make_recipe(bits=8)
    result = convert(str(hf_checkpoint), tmp_path / "out", recipe, dtype="float32")
    saved = mx.load(str(tmp_path / "out" / "model.safetensors"))
    assert result.dtype == "float32"
    assert saved["model.norm.weight"].dtype == mx.float32
    assert saved["model.layers.0.self_attn.q_proj.scales"].dtype == mx.float32
    assert saved["model.layers.0.self_attn.sinks"].dtype == mx.float32


def test_refuses_to_overwrite_without_force(hf_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConvertError, match=r"already exists.*--force"):
        convert(str(hf_checkpoint), out, make_recipe())
    assert (out / "keep.txt").read_text() == "mine"
    convert(str(hf_checkpoint), out, make_recipe(), force=True)
    assert not (out / "keep.txt").exists()
    assert (out / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left


def test_checks_free_disk_space(tmp_path):
    check_disk_space(tmp_path / "new" / "out", 1024)
    with pytest.raises(ConvertError, match=r"not enough disk space.*GB are free"):
        check_disk_space(tmp_path / "new" / "out", 10**18)


def test_misshapen_transformers_experts_are_one_clear_error(hf_checkpoint, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(hf_checkpoint, source)
    weights = mx.load(str(source / "model.safetensors"))
    key = "model.layers.0.mlp.experts.gate_up_proj"
    weights[key] = weights[key].swapaxes(1, 2)  # [experts, out, in]: not transformers'
    mx.save_safetensors(str(source / "model.safetensors"), weights)
    with pytest.raises(ConvertError, match=r"gate_up_proj has shape \(4, 128, 64\)"):
        convert(str(source), tmp_path / "out", make_recipe())
