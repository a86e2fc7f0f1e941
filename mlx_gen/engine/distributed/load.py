"""Starting a tensor-parallel group: the group, this rank's share of the
model, and the terms every rank works by. Every rank of `mlx.launch` runs
this before it leads or follows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import mlx.core as mx

from mlx_gen.engine import memory
from mlx_gen.engine.config import EngineConfig
from mlx_gen.errors import ModelLoadError, one_line

if TYPE_CHECKING:
    from mlx_gen.models.loading import LoadedModel
    from mlx_gen.settings import Settings


class DistributedError(ModelLoadError):
    """Ranks that cannot start together, said in one line."""


def init_group() -> mx.distributed.Group:
    try:
        return mx.distributed.init(strict=True)
    except RuntimeError as exc:
        raise DistributedError(
            f"--distributed needs the processes that `mlx.launch` starts ({exc})"
        ) from None


def load_sharded(settings: Settings, group: mx.distributed.Group) -> LoadedModel:
    """This rank's share of `settings.model`, split by the model's own
    `shard()` as mlx-lm's `sharded_load` does, but evaluated one layer at a
    time: `sharded_load` evaluates every parameter at once, and each rank then
    holds the whole model for a moment (measured: the bench model's full
    145 MB at peak on each rank, against 89 MB this way). Every rank must
    call it: it ends with a collective."""
    from mlx_lm.utils import load_model as mlx_load_model

    from mlx_gen.models.loading import (
        LoadedModel,
        cast_for_backend,
        check_weights,
        directory_entry,
        load_tokenizer,
        locate,
        read_config,
    )

    name, path, entry = locate(settings.model, settings)
    config = read_config(path)
    check_weights(path)
    n = group.size()
    for key in ("num_attention_heads", "num_key_value_heads"):
        heads = config.get(key)
        if isinstance(heads, int) and heads % n:
            raise ModelLoadError(f"{name} has {heads} {key}: it cannot split {n} ways")
    try:
        model, _ = mlx_load_model(path, lazy=True)
        if not hasattr(model, "shard"):
            raise ModelLoadError(f"mlx-lm cannot split {config['model_type']} models")
        model.shard(group)
        cast_for_backend(model)
        for layer in getattr(model, "layers", []):
            mx.eval(layer.parameters())
        mx.eval(model.parameters())
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load {name}'s share from {path}: {one_line(exc)}"
        ) from exc
    tokenizer = load_tokenizer(settings.model, settings)
    mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group))  # all loaded
    entry = entry or directory_entry(name, path, config)
    return LoadedModel(name, path, model, tokenizer, config, entry)


@dataclass(frozen=True)
class Terms:
    """What rank 0 decided for all: the longest list a call usually carries
    (a prefill chunk, or every batch row's token), the memory budget."""

    payload: int
    budget_bytes: int


def agree(group: mx.distributed.Group, config: EngineConfig) -> Terms:
    """Every rank calls this once after loading; rank 0's config is the one used.

    The budget is the one the smallest machine allows (or the configured one):
    each rank holds an equal share of the weights and of the KV cache."""
    lead = group.rank() == 0
    payload = max(config.prefill_step_size, config.max_batch_size) if lead else 0
    configured = (config.memory_budget_bytes or 0) if lead else 0
    shared = mx.distributed.all_sum(
        mx.array([payload, configured], dtype=mx.int64), group=group
    )
    device = memory.detect_device()
    mine = mx.array([device.recommended_bytes], dtype=mx.int64)
    devices = mx.distributed.all_gather(mine, group=group)
    payload, configured = shared.tolist()
    smallest = min(devices.tolist())
    # Not capped at the single machine's 16 GB: a model split across
    # machines is one that does not fit one.
    budget = configured or smallest
    return Terms(payload=payload, budget_bytes=budget)


def rank_config(config: EngineConfig, terms: Terms) -> EngineConfig:
    """The engine config every rank plans with."""
    return replace(config, memory_budget_bytes=terms.budget_bytes)
