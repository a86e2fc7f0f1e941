"""Rank 0's engine of a tensor-parallel group, and how rank 0 starts it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import mlx.nn as nn

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.distributed.leader import Leader
from mlx_gen.engine.distributed.load import (
    DistributedError,
    agree,
    init_group,
    load_sharded,
    rank_config,
)
from mlx_gen.engine.distributed.protocol import CallChannel, RankMemory
from mlx_gen.engine.llm_engine import LLMEngine

if TYPE_CHECKING:
    from mlx_gen.models.loading import LoadedModel
    from mlx_gen.settings import Settings

logger = logging.getLogger("mlx_gen.distributed")


class DistributedEngine(LLMEngine):
    """LLMEngine on rank 0 of a tensor-parallel group."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: EngineConfig,
        channel: CallChannel,
        step_timeout: float,
    ) -> None:
        self.leader = Leader(channel, model, step_timeout)
        self.ranks = channel.group.size()
        super().__init__(model, tokenizer, config, self.leader)

    @property
    def rank_memory(self) -> list[RankMemory] | None:
        """Every rank's weights and peak memory, gathered at shutdown."""
        return self.leader.rank_memory


def load_leader(
    settings: Settings, config: EngineConfig
) -> tuple[LoadedModel, DistributedEngine]:
    """Rank 0's shard and its engine (not started). The other ranks must be
    in `follow_unless_leader` with the same model."""
    group = init_group()
    try:
        loaded = load_sharded(settings, group)
        terms = agree(group, config)
    except RuntimeError as exc:  # a rank failed to load, or to start
        raise DistributedError(f"the ranks could not start together: {exc}") from None
    engine = DistributedEngine(
        loaded.model,
        loaded.tokenizer,
        rank_config(config, terms),
        CallChannel(group, terms.payload),
        settings.distributed_step_timeout,
    )
    logger.info("tensor parallel over %d ranks; this is rank 0", group.size())
    return loaded, engine
