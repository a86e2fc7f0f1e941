"""A rank > 0 of a tensor-parallel group: runs the calls rank 0 sends on its
own ModelRunner, in order, until rank 0 lets it go."""

from __future__ import annotations

import logging
import signal
import sys
from typing import TYPE_CHECKING

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine import memory
from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.distributed.load import agree, init_group, load_sharded, rank_config
from mlx_gen.engine.distributed.protocol import (
    PING,
    REPORT,
    STOP,
    CallChannel,
    gather_memory,
    settle,
)
from mlx_gen.engine.every_rank import EVERY_RANK
from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.types import ModelTooLarge
from mlx_gen.units import format_bytes

if TYPE_CHECKING:
    from mlx_gen.settings import Settings

logger = logging.getLogger("mlx_gen.distributed")


class Follower:
    def __init__(
        self, model: nn.Module, channel: CallChannel, config: EngineConfig
    ) -> None:
        self.model = model
        self.channel = channel
        self.config = config
        self.calls = 0

    def run(self) -> None:
        """Follow rank 0 until it says stop."""
        limits = None
        try:
            with mx.stream(mx.new_stream(mx.default_device())):
                # Rank 0's engine probes the model as it starts: so do we.
                shape = memory.measure_model(self.model)
                device = memory.detect_device()
                plan = memory.plan_memory(shape, self.config, device)
                limits = memory.apply_limits(plan, device)
                logger.info(
                    "this rank's share: weights %s, KV cache %s tokens",
                    format_bytes(plan.plan.weights_bytes),
                    f"{plan.plan.kv_token_budget:,}",
                )
                self._follow(ModelRunner(self.model, shape.vocab_size))
        finally:
            memory.restore_limits(limits)
            mx.clear_streams()

    def _follow(self, runner: ModelRunner) -> None:
        while True:
            name, args = self.channel.receive()
            if name == STOP:
                return
            self.calls += 1
            if name in EVERY_RANK:
                settle(EVERY_RANK[name](runner, *args))
            elif name == REPORT:
                gather_memory(self.channel.group, self.model)
            elif name != PING:
                raise RuntimeError(f"rank 0 sent an unknown call, {name!r}")


def follow_unless_leader(settings: Settings, config: EngineConfig) -> int | None:
    """On a rank > 0: load the shard and follow rank 0 until it shuts down;
    returns the exit code. On rank 0: None, and the caller leads."""
    group = init_group()
    if group.rank() == 0:
        return None
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format=f"%(asctime)s %(levelname)s rank {group.rank()}: %(message)s",
            stream=sys.stderr,
        )
    # Ctrl-C reaches every rank of `mlx.launch`: rank 0 drains, then lets
    # this rank go. SIGTERM still stops it at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loaded = load_sharded(settings, group)
    terms = agree(group, config)
    logger.info(
        "rank %d of %d: %s loaded, %s held (%s at peak); following rank 0",
        group.rank(),
        group.size(),
        loaded.name,
        format_bytes(memory.weights_bytes(loaded.model)),
        format_bytes(mx.get_peak_memory()),
    )
    channel = CallChannel(group, terms.payload)
    follower = Follower(loaded.model, channel, rank_config(config, terms))
    try:
        follower.run()
    except ModelTooLarge as exc:  # this rank's share does not fit its machine
        logger.error("%s", exc)
        return 1
    except RuntimeError as exc:
        logger.error("lost rank 0 after %d calls: %s", follower.calls, exc)
        return 1
    logger.info("rank 0 shut down; %d calls followed", follower.calls)
    return 0
