"""Prometheus metrics, in a registry of the app's own (tests build many apps)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric

from mlx_gen.engine.constraints import MASK_CLOCK
from mlx_gen.engine.types import EngineStats, GenerationEvent
from mlx_gen.server.context import RequestInfo

# fmt: off
_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)
_TOKEN_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
)
# fmt: on

# The engine's counters: (metric, help, EngineStats field).
_ENGINE_TOTALS = (
    ("mlx_gen_engine_prompt_tokens", "Prompt tokens admitted", "prompt_tokens_total"),
    ("mlx_gen_engine_generation_tokens", "Tokens generated", "generated_tokens_total"),
    ("mlx_gen_engine_decode_steps", "Decode steps of the batch", "steps_total"),
    (
        "mlx_gen_prefix_cache_queries",
        "Prompts looked up in the prefix cache",
        "prefix_cache_queries",
    ),
    (
        "mlx_gen_prefix_cache_hits",
        "Prompts that reused a cached prefix",
        "prefix_cache_hits",
    ),
    (
        "mlx_gen_prefix_cache_hit_tokens",
        "Prompt tokens reused from the prefix cache",
        "cached_tokens_total",
    ),
)

# Speculative decoding's counters: (metric, help, SpeculationTotals field).
_SPECULATION_TOTALS = (
    ("mlx_gen_speculative_proposed_tokens", "Tokens proposed", "proposed"),
    (
        "mlx_gen_speculative_accepted_tokens",
        "Proposed tokens the model kept",
        "accepted",
    ),
    ("mlx_gen_speculative_steps", "Verification steps of the batch", "steps"),
)


class EngineTotals:
    """The engine's own counters since it started, as of its last stats.

    One engine serves every app over it and its warm-up, so these count all
    of its work; the request counters of `Metrics` count this app's."""

    def __init__(self) -> None:
        self.stats: EngineStats | None = None

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        if s is None:
            return
        for name, documentation, field in _ENGINE_TOTALS:
            yield CounterMetricFamily(name, documentation, value=getattr(s, field))
        if s.speculation is not None:
            for name, documentation, field in _SPECULATION_TOTALS:
                value = getattr(s.speculation, field)
                yield CounterMetricFamily(name, documentation, value=value)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.engine_totals = EngineTotals()
        r.register(self.engine_totals)
        self.requests = Counter(
            "mlx_gen_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, registry=r)

        self.queue_length = gauge(
            "mlx_gen_queue_length", "Requests waiting in the engine"
        )
        self.running = gauge("mlx_gen_running_sequences", "Sequences being decoded")
        self.kv_used = gauge("mlx_gen_kv_tokens_used", "KV cache tokens in use")
        self.kv_budget = gauge(
            "mlx_gen_kv_tokens_budget", "KV cache tokens the memory plan allows"
        )
        self.prefix_cache = gauge(
            "mlx_gen_prefix_cache_bytes",
            "Bytes of KV snapshots held by the prefix cache",
        )
        self.prefix_hit_rate = gauge(
            "mlx_gen_prefix_cache_hit_rate",
            "Share of prefix cache lookups that reused a prefix, since start",
        )
        self.prefix_cache_limit = gauge(
            "mlx_gen_prefix_cache_limit_bytes",
            "Bytes the prefix cache may hold, as the memory plan allows",
        )
        self.mlx_active = gauge(
            "mlx_gen_mlx_active_memory_bytes",
            "Bytes in live MLX arrays (weights, KV caches, working memory)",
        )
        self.mlx_cache = gauge(
            "mlx_gen_mlx_cache_memory_bytes",
            "Bytes of freed MLX buffers kept for reuse",
        )
        self.acceptance = gauge(
            "mlx_gen_speculative_acceptance_rate",
            "Share of proposed tokens the model kept, since start",
        )
        self.mlx_cache_limit = gauge(
            "mlx_gen_mlx_cache_limit_bytes",
            "Bytes MLX's buffer cache may keep, as the memory plan allows",
        )
        self.ttft = Histogram(
            "mlx_gen_time_to_first_token_seconds",
            "Arrival to first generated token",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            "mlx_gen_inter_token_latency_seconds",
            "Time between generated tokens",
            buckets=_TOKEN_LATENCY_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "mlx_gen_e2e_request_latency_seconds",
            "Arrival to last byte",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "mlx_gen_queue_wait_seconds",
            "Time a request waited for admission",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "mlx_gen_prompt_tokens", "Prompt tokens processed", registry=r
        )
        self.generated_tokens = Counter(
            "mlx_gen_generation_tokens", "Tokens generated", registry=r
        )
        self.reasoning_tokens = Counter(
            "mlx_gen_reasoning_tokens", "Generated tokens of reasoning", registry=r
        )
        self.cached_tokens = Counter(
            "mlx_gen_cached_prompt_tokens",
            "Prompt tokens found in the prefix cache",
            registry=r,
        )

        self.constrained_requests = Counter(
            "mlx_gen_constrained_requests",
            "Requests whose output follows a grammar (schema, tool call, budget)",
            registry=r,
        )
        self.schema_compile = Histogram(
            "mlx_gen_schema_compile_seconds",
            "Time to compile a request's output grammar",
            buckets=_TOKEN_LATENCY_BUCKETS,
            registry=r,
        )
        mask_seconds = Gauge(
            "mlx_gen_constraint_mask_seconds",
            "Engine time spent computing and applying token masks, since start",
            registry=r,
        )
        mask_seconds.set_function(lambda: MASK_CLOCK.seconds)

    def observe_request(self, info: RequestInfo, duration: float) -> None:
        self.requests.labels(endpoint=info.endpoint, status=str(info.status)).inc()
        self.e2e.labels(endpoint=info.endpoint).observe(duration)
        if info.ttft is not None:
            self.ttft.observe(info.ttft)
        self.prompt_tokens.inc(info.prompt_tokens)
        self.generated_tokens.inc(info.completion_tokens)
        self.reasoning_tokens.inc(info.reasoning_tokens)
        self.cached_tokens.inc(info.cached_tokens)

    def update_engine(self, stats: EngineStats) -> None:
        self.queue_length.set(stats.waiting)
        self.running.set(stats.running)
        self.kv_used.set(stats.kv_tokens_used)
        self.kv_budget.set(stats.kv_tokens_budget)
        self.prefix_cache.set(stats.prefix_cache_bytes)
        queries = stats.prefix_cache_queries
        self.prefix_hit_rate.set(stats.prefix_cache_hits / queries if queries else 0.0)
        self.mlx_active.set(stats.mlx_active_bytes)
        self.mlx_cache.set(stats.mlx_cache_bytes)
        if stats.plan is not None:
            self.prefix_cache_limit.set(stats.plan.prefix_cache_bytes)
            self.mlx_cache_limit.set(stats.plan.cache_limit_bytes)
        speculation = stats.speculation
        if speculation is not None and speculation.proposed:
            self.acceptance.set(speculation.accepted / speculation.proposed)
        self.engine_totals.stats = stats

    def render(self) -> bytes:
        return generate_latest(self.registry)


class TokenTimer:
    """Times one request's tokens as they arrive: TTFT, inter-token, queue wait."""

    def __init__(self, metrics: Metrics, info: RequestInfo) -> None:
        self.metrics = metrics
        self.info = info
        self.last: dict[int, float] = {}

    def on_event(self, event: GenerationEvent) -> None:
        if event.token_ids:
            now = time.perf_counter()
            self.info.mark_first_token()
            last = self.last.get(event.index)
            if last is not None:
                gap = (now - last) / len(event.token_ids)
                for _ in event.token_ids:
                    self.metrics.inter_token.observe(gap)
            self.last[event.index] = now
        if event.timings is not None and event.index == 0:
            self.metrics.queue_wait.observe(event.timings.queue_wait)
