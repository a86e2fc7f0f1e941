"""Tensor parallelism over `mx.distributed`: what every rank shares.

`mlx.launch` starts one process per rank; each loads its shard of the model
(the model's own `shard()`, as mlx-lm's `sharded_load`). Rank 0 runs the
engine (distributed_leader.py); every other rank runs a `Follower`, which
makes exactly the model calls rank 0 makes, in the same order, so that the
collectives inside the sharded model pair up.

The plan of each operation goes from rank 0 to the others as a fixed-size
int32 array summed over the group (`all_sum`; the followers add zeros): a
broadcast made of MLX's own collectives. A decode step's plan carries the
batch's input tokens (the ones rank 0 sampled at the step before); the other
ranks never sample.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from mlx_gen.engine import memory
from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.distributed_load import init_group, load_sharded
from mlx_gen.engine.distributed_prefix import PrefixMirror
from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.types import ModelTooLarge
from mlx_gen.units import format_bytes

if TYPE_CHECKING:
    from mlx_gen.settings import Settings

logger = logging.getLogger("mlx_gen.distributed")

# op, slot, count, payload length; then the payload.
_HEADER = 4


class Op(IntEnum):
    PING = 1  # nothing to do: a heartbeat while rank 0 is idle
    NEW = 2  # a fresh prompt cache in slot `a`
    PREFILL = 3  # the payload's tokens into slot `a`
    ADD = 4  # slot `a` joins the batch as `b` rows; the slot is freed
    DROP = 5  # free the slots in the payload (prompts that never joined)
    REMOVE = 6  # keep only the batch rows in the payload
    CLEAR = 7  # drop the batch
    DECODE = 8  # one step of the batch's `a` rows, their input tokens
    MEMORY = 9  # gather every rank's memory figures
    SHUTDOWN = 10
    SNAPSHOT = 11  # keep a snapshot of slot `a` as prefix entry `b`
    EVICT = 12  # forget the prefix entries in the payload
    CLONE = 13  # slot `a`: prefix entry `b` cut to the payload's one length


class PlanChannel:
    """Rank 0 sends; the other ranks receive, in the same order."""

    def __init__(self, group: mx.distributed.Group, payload: int) -> None:
        self.group = group
        self.payload = payload

    def send(self, op: Op, a: int = 0, b: int = 0, data: Sequence[int] = ()) -> None:
        """Broadcast one plan, and wait for it (see distributed_runner.py)."""
        if len(data) > self.payload:
            raise ValueError(f"a plan carries at most {self.payload} values")
        plan = [int(op), a, b, len(data), *data]
        plan += [0] * (_HEADER + self.payload - len(plan))
        mx.eval(self._all_sum(mx.array(plan, dtype=mx.int32)))

    def receive(self) -> tuple[Op, int, int, list[int]]:
        values = self._all_sum(mx.zeros(_HEADER + self.payload, mx.int32)).tolist()
        op, a, b, n = values[:_HEADER]
        return Op(op), a, b, values[_HEADER : _HEADER + n]

    def _all_sum(self, x: mx.array) -> mx.array:
        return mx.distributed.all_sum(x, group=self.group)


@dataclass(frozen=True)
class Terms:
    """What rank 0 decided for all: the plan's payload size, the memory budget."""

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


@dataclass(frozen=True)
class RankMemory:
    rank: int
    weights_bytes: int
    active_bytes: int
    peak_bytes: int


def weights_bytes(model: nn.Module) -> int:
    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def gather_memory(group: mx.distributed.Group, model: nn.Module) -> list[RankMemory]:
    """Every rank's weights and MLX memory (a collective: all ranks call it)."""
    mine = [weights_bytes(model), mx.get_active_memory(), mx.get_peak_memory()]
    rows = mx.distributed.all_gather(mx.array([mine], dtype=mx.int64), group=group)
    return [RankMemory(i, *row) for i, row in enumerate(rows.tolist())]


class _Row:
    """A batch row on a follower: only its place in the batch matters."""

    def __init__(self) -> None:
        self.key = mx.zeros((2,), mx.uint32)


class _FollowerRunner(ModelRunner):
    def forward(self, tokens: list[int]) -> None:
        # The same graph as rank 0's step, up to the logits it samples from.
        inputs = mx.array(tokens, dtype=mx.uint32)
        mx.eval(self.model(inputs[:, None], cache=self._cache)[:, -1, :])


class Follower:
    """A rank > 0: mirrors rank 0's model calls until told to stop."""

    def __init__(
        self, model: nn.Module, channel: PlanChannel, config: EngineConfig
    ) -> None:
        self.model = model
        self.channel = channel
        self.config = config
        self.runner = _FollowerRunner(model, 0)
        self.slots: dict[int, list[Any]] = {}
        self.prefix = PrefixMirror()
        self.steps = 0

    def run(self) -> None:
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
                while self.follow():
                    pass
        finally:
            memory.restore_limits(limits)
            mx.clear_streams()

    def follow(self) -> bool:
        op, a, b, data = self.channel.receive()
        runner = self.runner
        if op is Op.NEW:
            self.slots[a] = runner.new_cache()
        elif op is Op.PREFILL:
            runner.prefill(self.slots[a], data)
        elif op is Op.ADD:
            runner.add([_Row() for _ in range(b)], self.slots.pop(a), 0)
        elif op is Op.DROP:
            for slot in data:
                self.slots.pop(slot, None)
        elif op is Op.REMOVE:
            keep = set(data)
            runner.remove([r for i, r in enumerate(runner.rows) if i not in keep])
        elif op is Op.CLEAR:
            runner.clear()
        elif op is Op.DECODE:
            if a != len(runner.rows):
                have = len(runner.rows)
                raise RuntimeError(f"rank 0 decodes {a} rows, this rank has {have}")
            runner.forward(data)
            self.steps += 1
        elif op is Op.SNAPSHOT:
            self.prefix.store(b, self.slots[a])
        elif op is Op.EVICT:
            self.prefix.evict(data)
        elif op is Op.CLONE:
            self.slots[a] = self.prefix.clone(b, data[0])
        elif op is Op.MEMORY:
            gather_memory(self.channel.group, self.model)
        return op is not Op.SHUTDOWN


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
        format_bytes(weights_bytes(loaded.model)),
        format_bytes(mx.get_peak_memory()),
    )
    channel = PlanChannel(group, terms.payload)
    follower = Follower(loaded.model, channel, rank_config(config, terms))
    try:
        follower.run()
    except ModelTooLarge as exc:  # this rank's share does not fit its machine
        logger.error("%s", exc)
        return 1
    except RuntimeError as exc:
        logger.error("lost rank 0 after %d steps: %s", follower.steps, exc)
        return 1
    logger.info("rank 0 shut down; %d steps followed", follower.steps)
    return 0
