"""`mlx_gen.convert` and `mlx-gen convert`: from the two layouts GPT-OSS checkpoints
come in on the hub to MLX directories that load and generate.

The checkpoints are written here from the tiny synthetic model's weights, in
transformers' names and shapes (unquantized experts as [experts, in, out] with
gate and up interleaved) and in OpenAI's original MXFP4 layout (`*_blocks`
uint8 [experts, out, groups, 16] with E8M0 `*_scales`), so the converted
model can be checked against the model the weights came from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from cli_run import run_cli

from mlx_gen.cli import main
from mlx_gen.convert import check_disk_space, convert, verify
from mlx_gen.errors import ConvertError
from mlx_gen.quant_recipes import make_recipe
from mlx_gen.settings import Settings
from mlx_gen.synthetic import write_tokenizer

EXPERTS = ".mlp.experts."
PROMPT = [5, 17, 42, 99, 7, 300]


def _mlx_weights(tiny_model_path: Path) -> dict[str, mx.array]:
    return mx.load(str(tiny_model_path / "model.safetensors"))


def _interleave(gate: mx.array, up: mx.array, axis: int) -> mx.array:
    """Gate and up rows alternating along `axis`, as GPT-OSS checkpoints keep them."""
    stacked = mx.stack([gate, up], axis=axis + 1)
    shape = list(gate.shape)
    shape[axis] *= 2
    return stacked.reshape(shape)


def _write_checkpoint(
    out: Path, tiny_model_path: Path, weights: dict, extra_config: dict
) -> Path:
    out.mkdir(parents=True)
    config = json.loads((tiny_model_path / "config.json").read_text())
    config.update(torch_dtype="bfloat16", **extra_config)
    (out / "config.json").write_text(json.dumps(config))
    mx.save_safetensors(str(out / "model.safetensors"), weights)
    write_tokenizer(out, config["vocab_size"])
    return out


def _split_experts(weights: dict[str, mx.array]):
    """(prefix → gate/up/down weights and biases) and the other tensors, in bf16."""
    experts: dict[str, dict[str, mx.array]] = {}
    rest = {}
    for name, value in weights.items():
        if EXPERTS in name:
            prefix, tail = name.split(EXPERTS)
            experts.setdefault(prefix + EXPERTS.rstrip("."), {})[tail] = value
        else:
            rest[name] = value.astype(mx.bfloat16)
    return experts, rest


def write_hf_checkpoint(out: Path, tiny_model_path: Path) -> Path:
    """transformers' layout: x @ W experts, [experts, in, out], bfloat16."""
    experts, weights = _split_experts(_mlx_weights(tiny_model_path))
    for prefix, e in experts.items():
        gate_up = _interleave(e["gate_proj.weight"], e["up_proj.weight"], axis=1)
        weights[f"{prefix}.gate_up_proj"] = gate_up.swapaxes(1, 2)
        weights[f"{prefix}.gate_up_proj_bias"] = _interleave(
            e["gate_proj.bias"], e["up_proj.bias"], axis=1
        )
        weights[f"{prefix}.down_proj"] = e["down_proj.weight"].swapaxes(1, 2)
        weights[f"{prefix}.down_proj_bias"] = e["down_proj.bias"]
    weights = {k: v.astype(mx.bfloat16) for k, v in weights.items()}
    return _write_checkpoint(out, tiny_model_path, weights, {})


def _mxfp4_blocks(weight: mx.array) -> tuple[mx.array, mx.array]:
    packed, scales = mx.quantize(weight, group_size=32, bits=4, mode="mxfp4")
    blocks = packed.view(mx.uint8).reshape(*weight.shape[:-1], -1, 16)
    return blocks, scales


def write_mxfp4_checkpoint(out: Path, tiny_model_path: Path) -> Path:
    """OpenAI's layout: MXFP4 experts in uint8 blocks and E8M0 scales, bf16 rest."""
    experts, weights = _split_experts(_mlx_weights(tiny_model_path))
    for prefix, e in experts.items():
        gate_up = _interleave(e["gate_proj.weight"], e["up_proj.weight"], axis=1)
        for name, weight in (("gate_up_proj", gate_up), ("down_proj", None)):
            weight = e["down_proj.weight"] if weight is None else weight
            blocks, scales = _mxfp4_blocks(weight)
            weights[f"{prefix}.{name}_blocks"] = blocks
            weights[f"{prefix}.{name}_scales"] = scales
        weights[f"{prefix}.gate_up_proj_bias"] = _interleave(
            e["gate_proj.bias"], e["up_proj.bias"], axis=1
        ).astype(mx.bfloat16)
        weights[f"{prefix}.down_proj_bias"] = e["down_proj.bias"].astype(mx.bfloat16)
    quantization = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    return _write_checkpoint(
        out, tiny_model_path, weights, {"quantization_config": quantization}
    )


@pytest.fixture(scope="module")
def hf_checkpoint(tiny_model_path: Path, tmp_path_factory) -> Path:
    return write_hf_checkpoint(tmp_path_factory.mktemp("src") / "hf", tiny_model_path)


@pytest.fixture(scope="module")
def mxfp4_checkpoint(tiny_model_path: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("src") / "mxfp4"
    return write_mxfp4_checkpoint(out, tiny_model_path)


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
    source = _mlx_weights(tiny_model_path)
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


def test_command_reports_and_proves_the_result(hf_checkpoint, tmp_path):
    out = tmp_path / "gpt-oss-mlx"
    done = run_cli(
        tmp_path, "convert", str(hf_checkpoint), str(out), "--recipe", "mxfp4-q8"
    )
    assert done.returncode == 0, done.stderr
    report = " ".join(done.stdout.split())
    for label in ("bits per weight", "size on disk", "engine plan", "generated"):
        assert label in report
    assert "6× mxfp4 g32" in report and "12× 8-bit affine g64" in report
    # The engine's plan, measured as served here (CPU: float32): 1 full-attention
    # layer grows by 2 (K, V) × 2 heads × 16 dims × 4 bytes = 256 B a token, the
    # sliding one holds its 32-token window: 8.19 KB.
    assert "256 B per token (1 layers) + 8.19 kB per sequence" in report
    assert "(8 tokens," in report
    again = run_cli(tmp_path, "convert", str(hf_checkpoint), str(out))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {out} already exists: pass --force to replace it"
    ]


def _unsupported(hf_checkpoint: Path, tmp_path: Path) -> str:
    source = tmp_path / "llama-like"
    shutil.copytree(hf_checkpoint, source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "nope"}))
    return str(source)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "error: source not found: {tmp}/missing"),
        (["{unsupported}"], "error: unsupported architecture 'nope'"),
        (["{hf}", "--recipe", "mxfp4-q8", "--bits", "4"], "error: --recipe mxfp4-q8"),
        (["{hf}", "--mode", "mxfp4", "--bits", "8"], "error: --mode mxfp4 means 4"),
        (["nobody/nothing"], "error: nobody/nothing is not in the hub cache"),
        (["{hf}"], "error: cannot write {tmp}/a-file/out: "),
    ],
)
def test_errors_are_one_line(
    args, message, hf_checkpoint, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    names = {"tmp": tmp_path, "hf": hf_checkpoint}
    if "{unsupported}" in args:
        names["unsupported"] = _unsupported(hf_checkpoint, tmp_path)
    argv = [a.format(**names) for a in args]
    (tmp_path / "a-file").write_text("")
    out = tmp_path / ("a-file/out" if "a-file" in message else "out")
    code = main(["convert", argv[0], str(out), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0, err
    assert err.startswith(message.format(**names))
    assert not (tmp_path / "out").exists()
