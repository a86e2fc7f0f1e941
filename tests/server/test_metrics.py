"""GET /metrics: prometheus text from a registry of the app's own."""

from __future__ import annotations

import uuid

import httpx
import openai
from polling import wait_until
from prometheus_client.parser import text_string_to_metric_families

from mlx_gen.server.app import create_app

from .conftest import MODEL
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


def test_engine_counters_after_traffic(make_server, served):
    """Every counter the engine keeps, read from /metrics: tokens, steps and
    the prefix cache's lookups, hits, hit tokens, hit rate and size."""
    server = make_server()
    engine = served.engine  # shared with other tests: wait for it to be idle
    assert wait_until(lambda: engine.stats().running + engine.stats().waiting == 0, 10)
    before = samples(server)
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)
    # A prompt no earlier test sent; its second run reuses the first's prefix.
    prompt = f"{uuid.uuid4().hex} counts the tokens of a prompt long enough to keep"
    usages = [
        client.completions.create(model=MODEL, prompt=prompt, max_tokens=6).usage
        for _ in range(2)
    ]
    after = samples(server)

    def grew(name: str) -> float:
        return value(after, name) - value(before, name)

    prompt_tokens = sum(u.prompt_tokens for u in usages)
    generated = sum(u.completion_tokens for u in usages)
    hit_tokens = usages[1].prompt_tokens_details.cached_tokens
    assert usages[0].prompt_tokens_details.cached_tokens == 0 and hit_tokens > 0
    assert grew("mlx_gen_engine_prompt_tokens_total") == prompt_tokens
    assert grew("mlx_gen_engine_generation_tokens_total") == generated
    assert grew("mlx_gen_engine_decode_steps_total") >= generated
    assert grew("mlx_gen_prefix_cache_queries_total") == 2
    assert grew("mlx_gen_prefix_cache_hits_total") == 1
    assert grew("mlx_gen_prefix_cache_hit_tokens_total") == hit_tokens
    stats = engine.stats()
    hits, queries = stats.prefix_cache_hits, stats.prefix_cache_queries
    assert value(after, "mlx_gen_prefix_cache_hits_total") == hits
    assert value(after, "mlx_gen_prefix_cache_hit_rate") == hits / queries
    assert value(after, "mlx_gen_prefix_cache_bytes") == stats.prefix_cache_bytes > 0


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
