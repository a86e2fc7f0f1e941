"""A random EAGLE-3 head for a synthetic model, in the published layout
(SpecForge's `midlayer.*` names, `d2t` and `t2d`), so that tests and
benchmarks build one offline. Written from the layout, not from the
engine's loader (mlx_gen/engine/speculation/eagle3_head.py), which it tests."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx


def build_eagle3_head(
    target_dir: Path, out_dir: Path, seed: int = 0, draft_vocab_size: int = 256
) -> Path:
    """A head in `out_dir` for the model in `target_dir`, drafting among
    `draft_vocab_size` of its token ids (a seeded choice)."""
    target = json.loads((target_dir / "config.json").read_text())
    layers, hidden = target["num_hidden_layers"], target["hidden_size"]
    config = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_attention_heads": target["num_attention_heads"],
        "num_key_value_heads": target["num_key_value_heads"],
        "head_dim": target["head_dim"],
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "vocab_size": target["vocab_size"],
        "draft_vocab_size": draft_vocab_size,
        # vLLM's numbering (the input of each layer): the embedding, the
        # middle layer's input and the last layer's output.
        "eagle_aux_hidden_state_layer_ids": [0, layers // 2, layers],
    }
    mx.random.seed(seed)
    weights = {
        name: mx.random.normal(shape) * shape[-1] ** -0.5
        for name, shape in _shapes(config, target["hidden_size"]).items()
    }
    for norm in ("norm", "midlayer.input_layernorm", "midlayer.hidden_norm"):
        weights[f"{norm}.weight"] = mx.ones(hidden)
    weights["midlayer.post_attention_layernorm.weight"] = mx.ones(hidden)
    chosen = mx.sort(mx.random.permutation(target["vocab_size"])[:draft_vocab_size])
    weights["d2t"] = chosen - mx.arange(draft_vocab_size)
    weights["t2d"] = mx.zeros(target["vocab_size"], dtype=mx.bool_).at[chosen].add(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out_dir / "model.safetensors"), weights)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    return out_dir


def _shapes(config: dict, target_hidden: int) -> dict[str, tuple[int, ...]]:
    """The projections of a head: q/k/v read [embedding ; hidden]."""
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    layer = {
        "self_attn.q_proj": (q, 2 * hidden),
        "self_attn.k_proj": (kv, 2 * hidden),
        "self_attn.v_proj": (kv, 2 * hidden),
        "self_attn.o_proj": (hidden, q),
        "mlp.gate_proj": (inner, hidden),
        "mlp.up_proj": (inner, hidden),
        "mlp.down_proj": (hidden, inner),
    }
    return {
        "fc.weight": (hidden, 3 * target_hidden),
        "lm_head.weight": (config["draft_vocab_size"], hidden),
        **{f"midlayer.{name}.weight": shape for name, shape in layer.items()},
    }
