import hashlib
import json
import math
from pathlib import Path

import mlx.core as mx
import mlx_lm
import pytest
from mlx.utils import tree_flatten

from mlx_gen.models.synthetic.presets import (
    HARMONY_SPECIAL_TOKENS,
    PRESETS,
    build_model,
    ensure_model,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_loads_with_mlx_lm_and_generates(preset, synthetic_cache):
    path = ensure_model(preset, cache_dir=synthetic_cache)
    model, tokenizer = mlx_lm.load(str(path))
    config = json.loads((path / "config.json").read_text())
    assert config["num_hidden_layers"] == len(model.layers)
    assert len(tokenizer.get_vocab()) == config["vocab_size"]
    steps = list(mlx_lm.stream_generate(model, tokenizer, "hello", max_tokens=8))
    assert 1 <= len(steps) <= 8
    assert all(0 <= step.token < config["vocab_size"] for step in steps)
    assert all(math.isfinite(step.logprobs.max().item()) for step in steps)


def test_bench_preset_builds_the_benchmark_model(synthetic_cache):
    """The model BENCHMARKING.md describes, as mlx-lm loads it from disk."""
    model, tokenizer = mlx_lm.load(str(ensure_model("bench", synthetic_cache)))
    args = model.args
    assert (args.hidden_size, args.intermediate_size) == (512, 512)
    assert args.layer_types == ["sliding_attention", "full_attention"] * 2
    assert len(model.layers) == 4
    assert (args.num_local_experts, args.num_experts_per_tok) == (8, 4)
    assert (args.sliding_window, args.rope_theta) == (128, 150000)
    assert args.rope_scaling["factor"] == 32.0
    assert args.rope_scaling["original_max_position_embeddings"] == 4096
    layer = dict(tree_flatten(model.layers[0].parameters()))
    assert layer["self_attn.q_proj.weight"].shape == (8 * 64, 512)
    assert layer["self_attn.k_proj.weight"].shape == (2 * 64, 512)
    assert layer["mlp.experts.gate_proj.weight"].shape == (8, 512, 512)
    assert layer["mlp.experts.gate_proj.weight"].dtype == mx.float32
    assert len(tokenizer.get_vocab()) == 8192
    parameters = sum(v.size for _, v in tree_flatten(model.parameters()))
    assert 35e6 < parameters < 37e6  # "about 36 M parameters"


def test_tiny_preset_is_about_one_megabyte(tiny_model_path):
    size = sum(f.stat().st_size for f in tiny_model_path.iterdir())
    assert 0.5e6 < size < 2e6


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    a = build_model("tiny", tmp_path / "a", seed=0)
    b = build_model("tiny", tmp_path / "b", seed=0)
    c = build_model("tiny", tmp_path / "c", seed=1)
    assert digest(a / "model.safetensors") == digest(b / "model.safetensors")
    assert digest(a / "tokenizer.json") == digest(b / "tokenizer.json")
    assert digest(a / "model.safetensors") != digest(c / "model.safetensors")


def test_harmony_tokens_are_single_special_ids(tiny_model):
    _, tokenizer = tiny_model
    ids = {tokenizer.convert_tokens_to_ids(t) for t in HARMONY_SPECIAL_TOKENS}
    assert len(ids) == len(HARMONY_SPECIAL_TOKENS)
    assert max(ids) < len(tokenizer.get_vocab())
    stop = {tokenizer.convert_tokens_to_ids(t) for t in ("<|return|>", "<|call|>")}
    assert set(tokenizer.eos_token_ids) == stop


def test_ensure_model_reuses_the_cache(tmp_path):
    first = ensure_model("tiny", cache_dir=tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = ensure_model("tiny", cache_dir=tmp_path)
    assert again == first
    assert (again / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_unknown_preset_names_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="tiny"):
        ensure_model("huge", cache_dir=tmp_path)
