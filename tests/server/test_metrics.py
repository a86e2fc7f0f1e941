"""GET /metrics: prometheus text from a registry of the app's own."""

from __future__ import annotations

import httpx
from polling import wait_until
from prometheus_client.parser import text_string_to_metric_families

from mlx_gen.server.app import create_app

from .helpers import settings_for


def samples(server) -> dict[tuple[str, tuple], float]:
    text = httpx.get(server.url("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_token_and_latency_metrics(make_server):
    server = make_server()
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 5}  # fmt: skip
    usage = httpx.post(server.url("/v1/chat/completions"), json=body).json()["usage"]
    httpx.post(server.url("/v1/chat/completions"), json={"model": "nope"})
    chat = "/v1/chat/completions"

    def both_counted() -> dict | None:
        # A request is counted after its last byte went out: soon, not at once.
        found = samples(server)
        e2e = value(found, "mlx_gen_e2e_request_latency_seconds_count", endpoint=chat)
        return found if e2e == 2 else None

    found = wait_until(both_counted, 5)
    assert found is not None, samples(server)
    assert value(found, "mlx_gen_requests_total", endpoint=chat, status="200") == 1
    assert value(found, "mlx_gen_requests_total", endpoint=chat, status="400") == 1
    assert value(found, "mlx_gen_prompt_tokens_total") == usage["prompt_tokens"]
    assert value(found, "mlx_gen_generation_tokens_total") == usage["completion_tokens"]
    assert value(found, "mlx_gen_time_to_first_token_seconds_count") == 1
    assert value(found, "mlx_gen_queue_wait_seconds_count") == 1
    itl = value(found, "mlx_gen_inter_token_latency_seconds_count")
    assert itl == usage["completion_tokens"] - 1
    assert value(found, "mlx_gen_e2e_request_latency_seconds_count", endpoint=chat) == 2
    assert value(found, "mlx_gen_kv_tokens_budget") > 0
    for gauge in ("mlx_gen_queue_length", "mlx_gen_running_sequences",
                  "mlx_gen_kv_tokens_used", "mlx_gen_reasoning_tokens_total",
                  "mlx_gen_cached_prompt_tokens_total"):  # fmt: skip
        assert (gauge, ()) in found


def test_each_app_counts_alone(served):
    first, second = (
        create_app(settings_for(), served),
        create_app(settings_for(), served),
    )
    first.state.mlx_gen.metrics.requests.labels(endpoint="x", status="200").inc()
    assert b'endpoint="x"' in first.state.mlx_gen.metrics.render()
    assert b'endpoint="x"' not in second.state.mlx_gen.metrics.render()


def test_memory_gauges_follow_the_engine(make_server, engine):
    server = make_server()
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 3}  # fmt: skip
    assert httpx.post(server.url("/v1/chat/completions"), json=body).is_success
    found = samples(server)
    stats = engine.stats()
    # Live arrays hold at least the weights; the prompt's KV snapshot is kept.
    assert value(found, "mlx_gen_mlx_active_memory_bytes") >= engine.plan.weights_bytes
    assert value(found, "mlx_gen_prefix_cache_bytes") == stats.prefix_cache_bytes > 0
    prefix_limit = value(found, "mlx_gen_prefix_cache_limit_bytes")
    assert prefix_limit == engine.plan.prefix_cache_bytes > 0
    limit = value(found, "mlx_gen_mlx_cache_limit_bytes")
    assert 0 < limit == engine.plan.cache_limit_bytes
    assert ("mlx_gen_mlx_cache_memory_bytes", ()) in found
    assert value(found, "mlx_gen_mlx_cache_memory_bytes") <= limit
