"""Liveness, readiness (warm-up, draining, a dead engine) and the drain gate."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx

from mlx_gen.server.app import create_app

from ..helpers import settings_for

CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 1,
}


def test_ready_after_warm_up(server):
    assert httpx.get(server.url("/health")).json() == {"status": "ok"}
    assert httpx.get(server.url("/ready")).json() == {"status": "ready"}
    assert server.state.warmed


def test_not_ready_before_warm_up(served):
    async def probe() -> httpx.Response:
        # No lifespan: the app is built but has not warmed up.
        app = create_app(settings_for(), served)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/ready")

    response = asyncio.run(probe())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"
    assert response.headers["retry-after"] == "1"


def test_draining_refuses_new_work_but_answers_probes(make_server):
    server = make_server()
    server.state.draining = True
    ready = httpx.get(server.url("/ready"))
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "shutting_down"
    refused = httpx.post(server.url("/v1/chat/completions"), json=CHAT)
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert refused.json()["error"]["code"] == "shutting_down"
    assert httpx.get(server.url("/health")).status_code == 200
    assert httpx.get(server.url("/metrics")).status_code == 200


def test_a_dead_engine_is_unready_and_unhealthy(tiny_model_path, served, make_server):
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine

    engine = load_engine(tiny_model_path, EngineConfig(max_batch_size=1))
    server = make_server(dataclasses.replace(served, engine=engine))
    assert httpx.get(server.url("/ready")).status_code == 200
    engine.shutdown()
    for path in ("/ready", "/health"):
        answer = httpx.get(server.url(path))
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "engine_dead"
    chat = httpx.post(server.url("/v1/chat/completions"), json=CHAT)
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "engine_unavailable"
