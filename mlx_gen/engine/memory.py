"""The memory plan: what the weights, the KV cache and working memory may use.

On Apple Silicon an MLX out-of-memory aborts the process, so nothing is left
to chance: the plan is computed once at start from the model's measured
shape, and the scheduler admits work only inside it. Every Metal-only call is
guarded so that the same code runs on Linux, where total RAM is the device.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.models.cache import KVCache, RotatingKVCache, make_prompt_cache

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.prompt_scores import logit_bytes_per_token
from mlx_gen.engine.types import MemoryPlan, ModelTooLarge
from mlx_gen.units import GB, format_bytes

DEFAULT_BUDGET_CAP = 16 * GB
# mlx-lm's batch KV caches grow in steps of 256 tokens.
ALLOC_SLACK = 256
# The attention fallback materializes about three float32 copies of the
# chunk x context x heads scores (12.1 GiB measured for 4 GiB of scores).
SCORE_COPIES = 3
# Refuse to start if not even one sequence this long fits.
MIN_CONTEXT = 1024


@dataclass(frozen=True)
class ModelShape:
    weights_bytes: int
    kv_bytes_per_token: int  # all full-attention layers together
    full_layers: int
    fixed_bytes_per_sequence: int  # sliding-window layers at their window
    n_heads: int
    vocab_size: int
    act_bytes_per_token: int  # prefill activations besides attention scores
    max_position: int | None


@dataclass(frozen=True)
class Device:
    total_bytes: int
    recommended_bytes: int  # Metal's recommended working set; RAM elsewhere
    metal: bool


def _per_token(cache: KVCache | RotatingKVCache) -> int:
    k, v = cache.keys, cache.values
    return k.shape[1] * k.shape[3] * k.itemsize + v.shape[1] * v.shape[3] * v.itemsize


def _max_position(model: nn.Module, tokenizer: Any) -> int | None:
    args = getattr(model, "args", None)
    limit = getattr(args, "max_position_embeddings", None)
    if limit is None:  # mlx-lm drops it from some configs; the tokenizer knows
        limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1 << 40 else None


def weights_bytes(model: nn.Module) -> int:
    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def measure_model(model: nn.Module, tokenizer: Any = None) -> ModelShape:
    """Probe one token through a fresh cache: exact KV shapes and dtypes."""
    cache = make_prompt_cache(model)
    model(mx.array([[0]]), cache=cache)
    mx.eval([c.state for c in cache])
    kv = fixed = sliding = full = 0
    for c in cache:
        if isinstance(c, RotatingKVCache):
            fixed += _per_token(c) * c.max_size
            sliding += _per_token(c)
        elif isinstance(c, KVCache):
            kv += _per_token(c)
            full += 1
        else:  # recurrent state and the like: a fixed size per sequence
            fixed += c.nbytes
    args = getattr(model, "args", None)
    hidden = getattr(args, "hidden_size", 4096)
    inter = getattr(args, "intermediate_size", 4 * hidden)
    experts = getattr(args, "num_experts_per_tok", 1)
    return ModelShape(
        weights_bytes=weights_bytes(model),
        kv_bytes_per_token=kv,
        full_layers=full,
        fixed_bytes_per_sequence=fixed,
        n_heads=getattr(args, "num_attention_heads", 32),
        vocab_size=getattr(args, "vocab_size", 0) or model(mx.array([[0]])).shape[-1],
        # Hidden states, norms, router and expert intermediates in float32,
        # plus the chunk a rotating cache holds beyond its window.
        act_bytes_per_token=4 * (16 * hidden + 6 * experts * inter) + sliding,
        max_position=_max_position(model, tokenizer),
    )


def detect_device() -> Device:
    if mx.metal.is_available():
        info = mx.device_info()
        total = int(info["memory_size"])
        return Device(
            total, int(info.get("max_recommended_working_set_size", total)), True
        )
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Device(total, total, False)


def prefill_transient(shape: ModelShape, chunk: int, context: int) -> int:
    scores = SCORE_COPIES * 4 * shape.n_heads * chunk * context
    return scores + shape.act_bytes_per_token * chunk


def decode_transient(shape: ModelShape, rows: int) -> int:
    # Logits, noise, masks and sorts of the sampler, all float32 (B x vocab).
    return rows * (8 * 4 * shape.vocab_size + shape.act_bytes_per_token)


def _fixed_tokens(shape: ModelShape) -> int:
    """A sequence's fixed-size state (sliding windows), counted in KV tokens."""
    per = max(shape.kv_bytes_per_token, 1)
    return math.ceil(shape.fixed_bytes_per_sequence / per)


@dataclass(frozen=True)
class MemoryModel:
    """The plan plus the arithmetic the scheduler admits work with (in tokens)."""

    plan: MemoryPlan
    shape: ModelShape
    prefill_reserve: int
    prefill_step_size: int

    @property
    def fixed_tokens(self) -> int:
        return _fixed_tokens(self.shape)

    def batch_tokens(self, rows: int, width: int) -> int:
        """The batch caches are left-padded: every row is as wide as the widest."""
        return rows * (width + ALLOC_SLACK + self.fixed_tokens) if rows else 0

    @staticmethod
    def prefill_tokens(prompt_tokens: int) -> int:
        """The solo cache of a prompt being prefilled, until it joins the batch."""
        return prompt_tokens + ALLOC_SLACK

    def chunk_size(self, position: int, scoring: bool = False) -> int:
        """The longest prefill chunk at `position` whose transient fits the
        reserve; `scoring`: its logits are reduced to prompt scores as well."""
        a = SCORE_COPIES * 4 * self.shape.n_heads
        b = a * position + self.shape.act_bytes_per_token
        if scoring:
            b += logit_bytes_per_token(self.shape.vocab_size)
        c = (-b + math.sqrt(b * b + 4 * a * self.prefill_reserve)) / (2 * a)
        return max(1, min(self.prefill_step_size, int(c)))

    def limit_for(self, rows: int) -> int:
        """The longest prompt + max_tokens that `rows` choices can ever have:
        their batch rows plus the solo cache their prompt is prefilled into."""
        slack = (rows + 1) * ALLOC_SLACK + rows * self.fixed_tokens
        room = self.plan.kv_token_budget - slack
        return max(0, min(self.plan.max_context, room // (rows + 1)))


def plan_memory(shape: ModelShape, config: EngineConfig, device: Device) -> MemoryModel:
    default_budget = min(DEFAULT_BUDGET_CAP, device.recommended_bytes)
    budget = config.memory_budget_bytes or default_budget
    step = config.prefill_step_size
    # Growing, merging or filtering a batch cache copies one layer at a time.
    per_token = shape.kv_bytes_per_token
    per_token += per_token // max(shape.full_layers, 1)
    fixed_tokens = _fixed_tokens(shape)
    configured = [x for x in (shape.max_position, config.max_context) if x]
    wanted = min([MIN_CONTEXT, *configured])
    # One sequence of `wanted` tokens: its batch row and its solo prefill cache.
    wanted_kv = (2 * wanted + 2 * ALLOC_SLACK + fixed_tokens) * per_token

    decode_t = decode_transient(shape, config.max_batch_size)
    fixed = shape.weights_bytes + config.headroom_bytes + config.prefix_cache_bytes
    free = budget - fixed - decode_t
    # Prefill's working memory: a quarter of what is free, unless that would
    # not leave room for one `wanted` sequence; never less than one full chunk
    # at short context. Twice: in use, and what MLX's buffer cache may keep.
    least = prefill_transient(shape, step, step)
    reserve = max(least, min(free // 4, (free - wanted_kv) // 2))
    kv_avail = free - 2 * reserve
    plan = MemoryPlan(
        weights_bytes=shape.weights_bytes,
        kv_bytes_per_token=shape.kv_bytes_per_token,
        sliding_kv_bytes_per_sequence=shape.fixed_bytes_per_sequence,
        budget_bytes=budget,
        headroom_bytes=config.headroom_bytes,
        kv_token_budget=max(0, kv_avail // max(per_token, 1)),
        max_context=min(configured, default=1 << 40),
        transient_bytes=decode_t + 2 * reserve,
        prefix_cache_bytes=config.prefix_cache_bytes,
        device_bytes=device.total_bytes,
        cache_limit_bytes=reserve,
    )
    model = MemoryModel(plan, shape, reserve, step)
    # A single sequence is bounded by memory as well as by the configuration.
    plan.max_context = model.limit_for(1)
    if plan.max_context < wanted:
        need = fixed + decode_t + 2 * least + wanted_kv
        raise ModelTooLarge(_too_large(plan, need, wanted, device))
    return model


def _too_large(plan: MemoryPlan, need: int, context: int, device: Device) -> str:
    size = format_bytes
    text = (
        f"The model does not fit the memory budget: weights"
        f" {size(plan.weights_bytes)}, headroom {size(plan.headroom_bytes)}, prefix"
        f" cache {size(plan.prefix_cache_bytes)}, working memory and a KV cache for"
        f" one {context}-token sequence need {size(need)} in all, but the budget is"
        f" {size(plan.budget_bytes)} (device {size(device.total_bytes)},"
        f" recommended working set {size(device.recommended_bytes)})."
    )
    if device.metal and need > device.recommended_bytes:
        # The sysctl counts binary megabytes.
        mb = math.ceil((need + plan.headroom_bytes) / (1 << 20))
        text += (
            " Raise the GPU wired memory limit with"
            f" `sudo sysctl iogpu.wired_limit_mb={mb}`"
            " and set MLX_GEN_MEMORY_BUDGET_GB to match."
        )
    else:
        text += (
            " Set a larger MLX_GEN_MEMORY_BUDGET_GB, or less prefix cache or headroom."
        )
    return text


def apply_limits(model: MemoryModel, device: Device) -> tuple[int, int | None]:
    """Bound MLX's buffer cache by the prefill reserve and, on Metal, wire the
    planned working set; returns the previous limits, for restore_limits."""
    cache = mx.set_cache_limit(model.plan.cache_limit_bytes)
    working = model.plan.budget_bytes - model.plan.headroom_bytes
    if not device.metal or working > device.recommended_bytes:
        return cache, None
    return cache, mx.set_wired_limit(working)


def restore_limits(previous: tuple[int, int | None] | None) -> None:
    if previous is None:
        return
    cache, wired = previous
    mx.set_cache_limit(cache)
    if wired is not None and mx.metal.is_available():
        mx.set_wired_limit(wired)
