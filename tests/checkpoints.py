"""GPT-OSS checkpoints in the two layouts they come in on the hub, written from
the tiny synthetic model's weights: transformers' names and shapes (unquantized
experts as [experts, in, out] with gate and up interleaved) and OpenAI's
original MXFP4 layout (`*_blocks` uint8 [experts, out, groups, 16] with E8M0
`*_scales`), so a converted model can be checked against the model the
weights came from."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx

from mlx_gen.models.synthetic.presets import write_tokenizer

EXPERTS = ".mlp.experts."
PROMPT = [5, 17, 42, 99, 7, 300]


def mlx_weights(tiny_model_path: Path) -> dict[str, mx.array]:
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
    experts, weights = _split_experts(mlx_weights(tiny_model_path))
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
    experts, weights = _split_experts(mlx_weights(tiny_model_path))
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
