"""Rank 0 of a tensor-parallel engine: the engine, whose every model call is
announced to the other ranks first (see distributed.py).

A collective whose peer is gone fails in one of two ways: the peer's socket
closes and MLX raises "[ring] connection to a peer was lost" within about a
second, or the peer hangs (a stopped process, a cable pulled) and the
collective waits forever. The first ends the engine at once; a watchdog
catches the second when a step has waited longer than `step_timeout`. Either
way the engine is dead for good (the ranks can no longer agree on the KV
caches): every request ends with an error, `/ready` answers 503, and the log
says why. While idle, rank 0 sends a heartbeat every second, so a lost rank
is found even when no request comes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import mlx.nn as nn

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.distributed import PlanChannel, RankMemory, agree, rank_config
from mlx_gen.engine.distributed_load import DistributedError, init_group, load_sharded
from mlx_gen.engine.distributed_prefix import MirroredPrefixCache
from mlx_gen.engine.distributed_runner import HEARTBEAT_SECONDS, LeaderRunner
from mlx_gen.engine.engine_thread import EngineThread
from mlx_gen.engine.llm_engine import LLMEngine
from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import PrefixCache

if TYPE_CHECKING:
    from mlx_gen.models.loading import LoadedModel
    from mlx_gen.settings import Settings

logger = logging.getLogger("mlx_gen.distributed")


class LeaderThread(EngineThread):
    idle_timeout = HEARTBEAT_SECONDS

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: EngineConfig,
        channel: PlanChannel,
        step_timeout: float,
    ) -> None:
        super().__init__(model, tokenizer, config)
        self.channel = channel
        self.step_timeout = step_timeout
        self.leader: LeaderRunner | None = None
        self._stopped = threading.Event()
        self._dying = threading.Lock()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._stopped.set()

    def _make_runner(self, vocab_size: int) -> ModelRunner:
        self.leader = LeaderRunner(self.model, vocab_size, self.channel)
        watchdog = threading.Thread(
            target=self._watch, name="mlx-gen-watchdog", daemon=True
        )
        watchdog.start()
        return self.leader

    def _make_prefix_cache(self) -> PrefixCache:
        return MirroredPrefixCache(self.config.prefix_cache_bytes, self.leader)

    def _iteration(self) -> bool:
        going = super()._iteration()
        leader = self.leader
        if not going:
            leader.finish()
        elif time.monotonic() - leader.last_op >= HEARTBEAT_SECONDS:
            leader.ping()
        return going

    def _die(self, error: str) -> None:
        with self._dying:  # the watchdog's thread, or the engine's
            super()._die(error)
        if self.leader is not None and self.leader.failure is None:
            self.leader.finish()  # a fault of rank 0's own: let the others go

    def _watch(self) -> None:
        leader = self.leader
        while not self._stopped.wait(min(1.0, self.step_timeout / 4)):
            with leader.lock:
                waited = leader.overdue(self.step_timeout)
                if waited is None or leader.failure is not None:
                    continue
                leader.fail(
                    f"an operation has waited {waited:.1f} s for the other ranks"
                    f" (timeout {self.step_timeout:g} s): a rank is gone or stuck"
                )
            # The engine thread is blocked in MLX: end its requests for it.
            self._die(leader.failure)


class DistributedEngine(LLMEngine):
    """LLMEngine on rank 0 of a tensor-parallel group."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: EngineConfig,
        channel: PlanChannel,
        step_timeout: float,
    ) -> None:
        super().__init__(model, tokenizer, config)
        self.ranks = channel.group.size()
        self._worker = LeaderThread(model, tokenizer, config, channel, step_timeout)

    @property
    def rank_memory(self) -> list[RankMemory] | None:
        """Every rank's weights and peak memory, gathered at shutdown."""
        leader = self._worker.leader
        return leader.rank_memory if leader else None

    def shutdown(self, drain_timeout: float = 0.0) -> None:
        leader = self._worker.leader
        if leader is None or leader.failure is None:
            super().shutdown(drain_timeout)
            return
        # The engine thread may be blocked in a collective for good: do not
        # wait for it (it is a daemon thread).
        with self._worker.lock:
            self._worker.accepting = False
        self._worker.inbox.put(("stop", time.perf_counter()))
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None  # waited for once: a second shutdown returns at once


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
    channel = PlanChannel(group, terms.payload)
    engine = DistributedEngine(
        loaded.model,
        loaded.tokenizer,
        rank_config(config, terms),
        channel,
        settings.distributed_step_timeout,
    )
    logger.info("tensor parallel over %d ranks; this is rank 0", group.size())
    return loaded, engine
