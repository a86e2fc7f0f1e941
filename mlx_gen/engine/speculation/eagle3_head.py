"""An EAGLE-3 head: its published layout, and loading it from a directory.

The layout is the one the GPT-OSS-20B heads are published in (SpecForge /
EAGLE, and vLLM's speculators format): `fc` projects the concatenated
hidden states of three target layers (3 x target hidden -> hidden); one
Llama decoder layer (`midlayer.*`, or `layers.0.*` in the speculators
format) whose q/k/v read [normed embedding ; normed hidden] (2 x hidden);
a final `norm`; an `lm_head` over a small draft vocabulary, whose id d is
the target's id d + d2t[d]. Input tokens are embedded with the target's
embedding unless the head carries its own `embed_tokens`.

Not read: `t2d` (target to draft ids; greedy drafts never need it) and
`rope_scaling` (the head's positions restart with each row, far below where
scaling matters).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine.types import SpeculationError


@dataclass(frozen=True)
class HeadConfig:
    hidden_size: int
    target_hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    attention_bias: bool
    vocab_size: int  # the target's
    draft_vocab_size: int
    norm_before_residual: bool
    # Id j is the input of target layer j (0: the embedding, L: the last
    # layer's output), as vLLM numbers them.
    aux_layer_ids: tuple[int, ...] | None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> HeadConfig:
        # The speculators format nests the decoder layer's settings.
        layer = {**config, **config.get("transformer_layer_config", {})}
        eagle = config.get("eagle_config") or {}
        aux = config.get("eagle_aux_hidden_state_layer_ids")
        if not aux and eagle.get("eagle_aux_hidden_state_layer_ids"):
            # SpecForge's (SGLang's) ids name layer outputs: id j is the
            # input of layer j + 1.
            aux = [int(i) + 1 for i in eagle["eagle_aux_hidden_state_layer_ids"]]
        try:
            hidden, heads = int(layer["hidden_size"]), int(layer["num_attention_heads"])
            return cls(
                hidden_size=hidden,
                target_hidden_size=int(config.get("target_hidden_size") or hidden),
                intermediate_size=int(layer["intermediate_size"]),
                num_attention_heads=heads,
                num_key_value_heads=int(layer.get("num_key_value_heads", heads)),
                head_dim=int(layer.get("head_dim") or hidden // heads),
                rms_norm_eps=float(layer.get("rms_norm_eps", 1e-6)),
                rope_theta=float(layer.get("rope_theta", 10000.0)),
                attention_bias=bool(layer.get("attention_bias", False)),
                vocab_size=int(layer["vocab_size"]),
                draft_vocab_size=int(
                    config.get("draft_vocab_size") or layer["vocab_size"]
                ),
                norm_before_residual=bool(config.get("norm_before_residual", False)),
                aux_layer_ids=tuple(int(i) for i in aux) if aux else None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SpeculationError(f"the eagle3 head's config.json lacks {e}") from e

    def aux_layers(self, target_layers: int) -> tuple[int, ...]:
        """The target layers whose inputs the head reads: its own, or vLLM's
        default (low, middle, high)."""
        ids = self.aux_layer_ids or (2, target_layers // 2, target_layers - 3)
        if len(ids) != 3 or not all(0 <= i <= target_layers for i in ids):
            raise SpeculationError(
                f"the eagle3 head reads target layers {list(ids)}: it needs 3 "
                f"ids in [0, {target_layers}] (the served model's layers)"
            )
        return ids


class _Attention(nn.Module):
    def __init__(self, c: HeadConfig) -> None:
        super().__init__()
        self.heads, self.kv_heads = c.num_attention_heads, c.num_key_value_heads
        self.scale = c.head_dim**-0.5
        width, bias = 2 * c.hidden_size, c.attention_bias
        self.q_proj = nn.Linear(width, c.num_attention_heads * c.head_dim, bias=bias)
        self.k_proj = nn.Linear(width, c.num_key_value_heads * c.head_dim, bias=bias)
        self.v_proj = nn.Linear(width, c.num_key_value_heads * c.head_dim, bias=bias)
        self.o_proj = nn.Linear(c.num_attention_heads * c.head_dim, c.hidden_size, bias)
        self.rope = nn.RoPE(c.head_dim, base=c.rope_theta)

    def __call__(self, x: mx.array, cache: Any) -> mx.array:
        b, n, _ = x.shape

        def split(y: mx.array, heads: int) -> mx.array:
            return y.reshape(b, n, heads, -1).transpose(0, 2, 1, 3)

        q = split(self.q_proj(x), self.heads)
        k = split(self.k_proj(x), self.kv_heads)
        v = split(self.v_proj(x), self.kv_heads)
        q, k = self.rope(q, offset=cache.offset), self.rope(k, offset=cache.offset)
        k, v = cache.update_and_fetch(k, v)
        mask = "causal" if n > 1 else None
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(b, n, -1))


class _MLP(nn.Module):
    def __init__(self, c: HeadConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class _DecoderLayer(nn.Module):
    def __init__(self, c: HeadConfig) -> None:
        super().__init__()
        self.norm_before_residual = c.norm_before_residual
        self.input_layernorm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.hidden_norm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.post_attention_layernorm = nn.RMSNorm(c.hidden_size, eps=c.rms_norm_eps)
        self.self_attn = _Attention(c)
        self.mlp = _MLP(c)

    def __call__(self, embeds: mx.array, hidden: mx.array, cache: Any) -> mx.array:
        normed = self.hidden_norm(hidden)
        residual = normed if self.norm_before_residual else hidden
        x = mx.concatenate([self.input_layernorm(embeds), normed], axis=-1)
        h = residual + self.self_attn(x, cache)
        return h + self.mlp(self.post_attention_layernorm(h))


class Eagle3Head(nn.Module):
    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.fc = nn.Linear(3 * config.target_hidden_size, config.hidden_size, False)
        self.midlayer = _DecoderLayer(config)
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.draft_vocab_size, False)

    def step(self, embeds: mx.array, hidden: mx.array, cache: Any) -> mx.array:
        """The layer's output (B, n, hidden) of `embeds` beside `hidden`: the
        fused target states (B, n, 3 x target hidden), or the head's own
        output at the draft step before."""
        if hidden.shape[-1] != self.config.hidden_size:
            hidden = self.fc(hidden.astype(self.fc.weight.dtype))
        return self.midlayer(embeds.astype(hidden.dtype), hidden, cache)

    def logits(self, out: mx.array) -> mx.array:
        """Draft-vocabulary logits of the layer's output."""
        return self.lm_head(self.norm(out))


@dataclass
class LoadedHead:
    head: Eagle3Head
    draft_to_target: mx.array  # (draft vocab,) the target id of each draft id
    embed_tokens: nn.Embedding | None  # the head's own, when it has one


def load_head(path: Path, target_hidden: int, target_vocab: int) -> LoadedHead:
    """The head in directory `path`; a SpeculationError naming what is wrong
    with a directory that does not hold one for this target."""
    if not (path / "config.json").is_file():
        raise SpeculationError(f"the eagle3 head {str(path)!r} has no config.json")
    config = HeadConfig.from_dict(json.loads((path / "config.json").read_text()))
    if config.target_hidden_size != target_hidden:
        raise SpeculationError(
            f"the eagle3 head reads hidden states of size "
            f"{config.target_hidden_size}: the served model's are {target_hidden}"
        )
    if config.vocab_size != target_vocab:
        raise SpeculationError(
            f"the eagle3 head maps to a vocabulary of {config.vocab_size} "
            f"tokens: the served model's has {target_vocab}"
        )
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise SpeculationError(f"the eagle3 head {str(path)!r} has no safetensors")
    weights: dict[str, mx.array] = {}
    for file in files:
        weights.update(mx.load(str(file)))
    weights = {k.replace("layers.0.", "midlayer."): v for k, v in weights.items()}
    weights.pop("t2d", None)
    d2t = weights.pop("d2t", None)
    if d2t is None and config.draft_vocab_size != config.vocab_size:
        raise SpeculationError("the eagle3 head has a draft vocabulary but no d2t")
    draft_ids = mx.arange(config.draft_vocab_size)
    mapping = draft_ids if d2t is None else draft_ids + d2t.astype(mx.int64)
    embed_weight = weights.pop("embed_tokens.weight", None)
    if embed_weight is None and config.hidden_size != target_hidden:
        raise SpeculationError(
            "the eagle3 head has no embed_tokens and its hidden size differs "
            "from the served model's: it cannot use the model's embedding"
        )
    head = Eagle3Head(config)
    try:
        head.load_weights(list(weights.items()), strict=True)
    except ValueError as e:
        raise SpeculationError(f"the eagle3 head's weights do not fit: {e}") from e
    if mapping.shape != (config.draft_vocab_size,) or not bool(
        mx.all((mapping >= 0) & (mapping < target_vocab))
    ):
        raise SpeculationError("the eagle3 head's d2t maps outside the vocabulary")
    embed = None
    if embed_weight is not None:
        embed = nn.Embedding(*embed_weight.shape)
        embed.weight = embed_weight
    mx.eval(head.parameters(), mapping)
    return LoadedHead(head, mapping, embed)
