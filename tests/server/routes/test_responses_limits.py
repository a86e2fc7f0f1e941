"""/v1/responses under the same rate limits, metrics and slot discipline as chat."""

from __future__ import annotations

import openai
import pytest
from polling import wait_until

from ..conftest import MODEL
from ..test_metrics import samples, value

ROUTE = "/v1/responses"


def test_rate_limited_like_chat(make_server):
    server = make_server(rate_limit_rpm=1)
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"]


def test_metrics_are_labelled_by_the_route(make_server):
    server = make_server()
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    made = client.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    client.responses.retrieve(made.id)

    def counted() -> dict | None:
        # A request is counted after its last byte went out: soon, not at once.
        found = samples(server)
        by_id = ROUTE + "/{response_id}"
        counts = [
            value(found, "mlx_gen_requests_total", endpoint=route, status="200")
            for route in (ROUTE, by_id)
        ]
        return found if counts == [1, 1] else None

    found = wait_until(counted, 5)
    assert found is not None, samples(server)
