"""The distributed engine in one process: a group of one rank.

Every collective of a one-rank group is the identity, so rank 0's code runs
for real (sending each call, the step's tokens among them, heartbeats,
the memory report at shutdown) and must give exactly what LLMEngine gives.
Two ranks over the ring backend: tests/server/test_distributed.py.
"""

from __future__ import annotations

import asyncio

import mlx.core as mx
import pytest
from polling import wait_until

from mlx_gen.engine import EngineConfig, LLMEngine, memory
from mlx_gen.engine.distributed.engine import DistributedEngine
from mlx_gen.engine.distributed.leader import HEARTBEAT_SECONDS
from mlx_gen.engine.distributed.load import Terms, agree, rank_config
from mlx_gen.engine.distributed.protocol import CallChannel
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, greedy, run

CONFIG = EngineConfig(
    memory_budget_bytes=2 << 30,
    prefix_cache_bytes=48 << 10,  # two or three prompts: evictions happen
    headroom_bytes=0,
    default_stop_token_ids=[],
    prefill_step_size=16,
    max_batch_size=8,
)
PROMPTS = [[5, 6, 7], list(range(100, 140)), [9] * 20, [300, 2, 44, 51]]


@pytest.fixture
def engines(tiny_model):
    group = mx.distributed.init()  # not launched: a group of one
    terms = agree(group, CONFIG)
    leader = DistributedEngine(
        *tiny_model, rank_config(CONFIG, terms), CallChannel(group, terms.payload), 30
    )
    plain = LLMEngine(*tiny_model, CONFIG)
    for engine in (leader, plain):
        engine.start()
    yield leader, plain
    for engine in (leader, plain):
        engine.shutdown()


async def _all(engine, prompts, aborted: int | None = None):
    async def one(i, prompt):
        request = greedy(prompt, max_tokens=1000 if i == aborted else 12 + 3 * i)
        if i == aborted:  # cancelled while queued, prefilled or decoding
            stream = engine.submit(request)
            await asyncio.sleep(0.05)
            engine.abort(request.request_id)
            return [e async for e in stream][-1].finish_reason
        return (await collect(engine, request)).tokens[0]

    return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


def test_agreement_takes_rank_zero_config_and_smallest_device():
    group = mx.distributed.init()
    terms = agree(group, EngineConfig(prefill_step_size=64, max_batch_size=100))
    assert terms.payload == 100  # room for a chunk, or for every row's index
    # The smallest machine's working set, not the one-machine 16 GiB cap.
    assert terms.budget_bytes == memory.detect_device().recommended_bytes
    assert agree(group, CONFIG).budget_bytes == 2 << 30
    config = rank_config(EngineConfig(memory_budget_bytes=3 << 30), Terms(8, 1 << 30))
    assert config.memory_budget_bytes == 1 << 30


def test_one_rank_generates_what_the_plain_engine_does(engines):
    leader, plain = engines
    assert run(_all(leader, PROMPTS)) == run(_all(plain, PROMPTS))
    # Again with one request aborted early (its prompt cache, if it had one,
    # is dropped on every rank): the others are untouched.
    mixed = [*PROMPTS, list(range(200, 260))]
    got = run(_all(leader, mixed, aborted=4))
    assert got[:4] == run(_all(plain, PROMPTS)) and got[4] == "abort"
    # Prompts that reuse cached prefixes (the rank's own clones, by entry).
    longer = [list(range(100, 150)), list(range(100, 130)) + [7] * 20]
    assert run(_all(leader, longer)) == run(_all(plain, longer))
    assert leader.stats().prefix_cache_hits > 0


def test_idle_heartbeat_and_memory_report(engines):
    leader, plain = engines
    runner = leader.leader
    before = runner.last_op
    # Pinged while idle: every HEARTBEAT_SECONDS, given a busy machine's slack.
    assert wait_until(lambda: runner.last_op > before, HEARTBEAT_SECONDS * 10)
    assert leader.stats().alive and leader.plan == plain.plan
    leader.shutdown()
    (rank,) = leader.rank_memory
    assert rank.rank == 0 and rank.weights_bytes == leader.plan.weights_bytes
    assert rank.peak_bytes >= rank.active_bytes > 0


def test_one_rank_scores_prompts_as_the_plain_engine_does(engines):
    def scoring() -> GenerationRequest:
        sampling = SamplingParams(max_tokens=0, temperature=0.0, prompt_logprobs=2)
        return GenerationRequest(list(range(100, 160)), sampling)

    leader, plain = (run(collect(e, scoring())).events for e in engines)
    assert len(leader) == len(plain) == 1
    assert len(leader[0].prompt_logprobs) == 59
    assert leader[0].prompt_logprobs == plain[0].prompt_logprobs
