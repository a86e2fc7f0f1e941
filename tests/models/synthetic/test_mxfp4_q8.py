import hashlib
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx_lm
import pytest
from mlx_lm.models.switch_layers import QuantizedSwitchLinear, SwitchLinear
from safetensors import safe_open

from mlx_gen.models.loading import cast_for_backend, check_weights
from mlx_gen.models.synthetic.mxfp4_q8 import quantized_layout
from mlx_gen.models.synthetic.presets import (
    GPT_OSS_20B,
    Preset,
    build_mxfp4_q8,
    ensure_model,
)
from mlx_gen.units import GB

# The full-size layout at a few MB: every dimension still a multiple of 64.
REDUCED = Preset(
    hidden_size=128,
    intermediate_size=128,
    num_hidden_layers=2,
    num_local_experts=4,
    num_experts_per_tok=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    sliding_window=32,
    vocab_size=1024,
)


@pytest.fixture(scope="module")
def reduced_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reduced") / "model"
    # Small shards, so that the index spans several files.
    return build_mxfp4_q8(out, seed=0, preset=REDUCED, shard_bytes=200_000)


def assert_mxfp4_q8(model: nn.Module) -> int:
    """Every weight matrix is quantized: experts MXFP4, the rest 8-bit affine."""
    quantized = 0
    for path, module in model.named_modules():
        assert not isinstance(module, nn.Linear | nn.Embedding | SwitchLinear), path
        if isinstance(module, QuantizedSwitchLinear):
            assert ".mlp.experts." in path
            assert (module.mode, module.bits, module.group_size) == ("mxfp4", 4, 32)
            quantized += 1
        elif isinstance(module, nn.QuantizedLinear | nn.QuantizedEmbedding):
            assert (module.mode, module.bits, module.group_size) == ("affine", 8, 64)
            quantized += 1
    return quantized


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_size_layout_is_the_mxfp4_q8_conversion():
    layout, config = quantized_layout(GPT_OSS_20B.config())
    assert config["num_hidden_layers"] == 24
    assert config["layer_types"][:2] == ["sliding_attention", "full_attention"]
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (32, 4)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (64, 8)
    assert (config["vocab_size"], config["sliding_window"]) == (201088, 128)
    assert config["rope_scaling"]["factor"] == 32.0
    assert layout["model.layers.23.mlp.experts.gate_proj.weight"] == (
        (32, 2880, 360),
        "uint32",
    )
    assert layout["model.layers.0.mlp.experts.down_proj.scales"] == (
        (32, 2880, 90),
        "uint8",
    )
    assert layout["model.embed_tokens.weight"] == ((201088, 720), "uint32")
    assert layout["lm_head.scales"] == ((201088, 45), "bfloat16")
    assert layout["model.layers.0.self_attn.q_proj.weight"] == ((4096, 720), "uint32")
    assert layout["model.layers.0.mlp.router.weight"] == ((32, 720), "uint32")
    assert layout["model.layers.0.self_attn.sinks"] == ((64,), "bfloat16")
    itemsize = {"uint32": 4, "uint8": 1, "bfloat16": 2}
    total = sum(math.prod(s) * itemsize[d] for s, d in layout.values())
    assert 12.0e9 < total < 12.2e9  # the community MXFP4-Q8 is about 12.1 GB


def test_reduced_shape_config_and_shards(reduced_path):
    config = json.loads((reduced_path / "config.json").read_text())
    quantization = config["quantization"]
    assert config["quantization_config"] == quantization
    assert {k: quantization[k] for k in ("group_size", "bits", "mode")} == {
        "group_size": 32,
        "bits": 4,
        "mode": "mxfp4",
    }
    affine = {"group_size": 64, "bits": 8, "mode": "affine"}
    assert quantization["model.embed_tokens"] == affine
    assert quantization["lm_head"] == affine
    for i in range(REDUCED.num_hidden_layers):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            assert quantization[f"model.layers.{i}.self_attn.{proj}"] == affine
        assert quantization[f"model.layers.{i}.mlp.router"] == {
            "group_size": 64,
            "bits": 8,
        }
    assert not any(".experts" in key for key in quantization)

    index = json.loads((reduced_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    stored: dict[str, str] = {}
    for shard in shards:
        # The reference reader validates the header and the offsets.
        with safe_open(str(reduced_path / shard), framework="numpy") as f:
            stored.update(dict.fromkeys(f.keys(), shard))
    assert stored == index["weight_map"]
    check_weights(reduced_path)  # the service's own pre-load check
    weights = sum((shard_size(reduced_path / s) for s in shards), 0)
    assert index["metadata"]["total_size"] == weights


def shard_size(path: Path) -> int:
    header = int.from_bytes(path.read_bytes()[:8], "little")
    return path.stat().st_size - 8 - header


def test_reduced_shape_loads_quantized_and_generates(reduced_path):
    model, tokenizer = mlx_lm.load(str(reduced_path))
    # Per layer 4 attention projections, 3 expert projections and the router;
    # then the embedding and the head.
    assert assert_mxfp4_q8(model) == 8 * REDUCED.num_hidden_layers + 2
    assert model.model.norm.weight.dtype == mx.bfloat16
    attn = model.layers[0].self_attn.q_proj
    dense = mx.dequantize(attn.weight, attn.scales, attn.biases, 64, 8)
    assert abs(dense.mean().item()) < 0.002
    assert 0.015 < dense.std().item() < 0.025
    experts = model.layers[1].mlp.experts.down_proj
    fp4 = mx.dequantize(experts.weight, experts.scales, None, 32, 4, mode="mxfp4")
    assert mx.isfinite(fp4).all().item()
    assert 0.01 < fp4.std().item() < 0.03
    cast_for_backend(model)
    logits = model(mx.array([tokenizer.encode("hello world")]))
    assert logits.dtype == mx.float32
    assert mx.isfinite(logits).all().item()
    out = list(mlx_lm.stream_generate(model, tokenizer, "hello", max_tokens=2))
    assert out[-1].generation_tokens == 2


def test_same_seed_same_bytes(reduced_path, tmp_path):
    again = build_mxfp4_q8(tmp_path / "a", 0, REDUCED, shard_bytes=200_000)
    other = build_mxfp4_q8(tmp_path / "b", 1, REDUCED, shard_bytes=200_000)
    for shard in sorted(reduced_path.glob("*.safetensors")):
        assert digest(again / shard.name) == digest(shard)
        assert digest(other / shard.name) != digest(shard)


def test_a_dimension_off_the_group_size_is_refused(tmp_path):
    # 96 is not a multiple of 64: mlx-lm would leave the 8-bit layers in float.
    odd = replace(REDUCED, hidden_size=96, intermediate_size=96)
    with pytest.raises(ValueError, match="unquantized"):
        build_mxfp4_q8(tmp_path / "odd", 0, odd)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_full_size_builds_loads_and_stays_under_16_gib(tmp_path_factory):
    cache = tmp_path_factory.mktemp("full-size")
    try:
        path = ensure_model("gpt-oss-20b", cache_dir=cache)
        assert sum(f.stat().st_size for f in path.iterdir()) > 12.0e9
        mx.reset_peak_memory()
        model, tokenizer = mlx_lm.load(str(path))
        assert assert_mxfp4_q8(model) == 8 * 24 + 2
        cast_for_backend(model)
        out = list(mlx_lm.stream_generate(model, tokenizer, "Hello", max_tokens=2))
        assert out[-1].generation_tokens == 2
        assert mx.get_peak_memory() < 16 * GB
    finally:
        # 12 GB: never leave it to pytest's kept temporary directories.
        shutil.rmtree(cache, ignore_errors=True)
