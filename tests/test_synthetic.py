import hashlib
import json
from pathlib import Path

import mlx_lm
import pytest

from mlx_gen.synthetic import HARMONY_SPECIAL_TOKENS, PRESETS, build_model, ensure_model


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_loads_with_mlx_lm_and_generates(preset, synthetic_cache):
    path = ensure_model(preset, cache_dir=synthetic_cache)
    model, tokenizer = mlx_lm.load(str(path))
    config = json.loads((path / "config.json").read_text())
    assert config["num_hidden_layers"] == len(model.layers)
    assert len(tokenizer.get_vocab()) == config["vocab_size"]
    text = mlx_lm.generate(model, tokenizer, "hello", max_tokens=8)
    assert isinstance(text, str)


def test_bench_preset_is_the_benchmark_model():
    config = PRESETS["bench"].config()
    assert (config["hidden_size"], config["intermediate_size"]) == (512, 512)
    assert config["num_hidden_layers"] == 4
    assert config["layer_types"] == ["sliding_attention", "full_attention"] * 2
    assert (config["num_local_experts"], config["num_experts_per_tok"]) == (8, 4)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (8, 2)
    assert (config["head_dim"], config["sliding_window"]) == (64, 128)
    assert config["vocab_size"] == 8192
    assert config["rope_theta"] == 150000
    assert config["rope_scaling"]["factor"] == 32.0
    assert config["rope_scaling"]["original_max_position_embeddings"] == 4096


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
