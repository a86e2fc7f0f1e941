"""Speculative decoding through the server: the opt-out field, /metrics and
the access log line, with the official SDK against a live server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from polling import wait_until

from mlx_gen.server.served import ServedModel

from .helpers import access_lines, live, settings_for


@pytest.fixture(scope="module")
def speculating(tiny_model_path: Path, tiny_tokenizer: Any, harmony: Any) -> Iterator:
    """A live server whose engine speculates with prompt lookup."""
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine
    from mlx_gen.server.app import create_app

    engine = load_engine(
        tiny_model_path, EngineConfig(max_batch_size=8, speculative="ngram")
    )
    served = ServedModel(
        name="tiny",
        engine=engine,
        chat_format=harmony,
        tokenizer=tiny_tokenizer,
        max_context=4096,
        vocab_size=len(tiny_tokenizer),
    )
    try:
        with live(create_app(settings_for(), served)) as server:
            yield server
    finally:
        engine.shutdown()


def _access_line(caplog: Any, path: str) -> dict:
    """The access log line of the one request to `path`, once it is written
    (after the answer's last byte: the client may be quicker)."""

    def lines() -> list[dict]:
        return [line for line in access_lines(caplog, 0) if line["path"] == path]

    found = wait_until(lines, 5.0)
    assert found and len(found) == 1, found
    return found[0]


def _metric(server: Any, name: str) -> float:
    text = httpx.get(server.url("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_accepted_tokens_reach_metrics_and_the_access_log(speculating, caplog):
    client = openai.OpenAI(
        base_url=speculating.url("/v1"), api_key="none", max_retries=0
    )
    before = _metric(speculating, "mlx_gen_speculative_accepted_tokens_total")
    with caplog.at_level(logging.INFO, logger="mlx_gen.access"):
        client.completions.create(
            model="tiny", prompt="one two three", max_tokens=150, temperature=0
        )
        line = _access_line(caplog, "/v1/completions")
    accepted = _metric(speculating, "mlx_gen_speculative_accepted_tokens_total")
    proposed = _metric(speculating, "mlx_gen_speculative_proposed_tokens_total")
    assert line["accepted_tokens"] > 0
    assert accepted - before == line["accepted_tokens"]
    rate = _metric(speculating, "mlx_gen_speculative_acceptance_rate")
    assert rate == pytest.approx(accepted / proposed)


def test_a_request_opts_out_with_speculative_false(speculating, caplog):
    client = openai.OpenAI(
        base_url=speculating.url("/v1"), api_key="none", max_retries=0
    )
    before = _metric(speculating, "mlx_gen_speculative_proposed_tokens_total")
    with caplog.at_level(logging.INFO, logger="mlx_gen.access"):
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "one two three"}],
            max_tokens=100,
            temperature=0,
            extra_body={"speculative": False},
        )
        line = _access_line(caplog, "/v1/chat/completions")
    assert reply.usage.completion_tokens > 0
    assert line["accepted_tokens"] == 0
    assert _metric(speculating, "mlx_gen_speculative_proposed_tokens_total") == before


def test_a_bad_opt_out_value_is_a_400(speculating):
    reply = httpx.post(
        speculating.url("/v1/chat/completions"),
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "speculative": "sometimes",
        },
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "speculative"
