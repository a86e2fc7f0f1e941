"""A random EAGLE-3 head for a synthetic model, in the published layout
(SpecForge's `midlayer.*` names, `d2t` and `t2d`), so that tests and
benchmarks build one offline."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from mlx_gen.engine.speculation.eagle3_head import Eagle3Head, HeadConfig


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
        "eagle_config": {
            "eagle_aux_hidden_state_layer_ids": [0, layers // 2, layers],
        },
    }
    mx.random.seed(seed)
    head = Eagle3Head(HeadConfig.from_dict(config))
    weights = dict(tree_flatten(head.parameters()))
    chosen = mx.sort(mx.random.permutation(target["vocab_size"])[:draft_vocab_size])
    weights["d2t"] = chosen - mx.arange(draft_vocab_size)
    weights["t2d"] = mx.zeros(target["vocab_size"], dtype=mx.bool_).at[chosen].add(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out_dir / "model.safetensors"), weights)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    return out_dir
