"""A client leaving a stream of /v1/responses or /v1/messages frees its
engine row at once, as on chat."""

from __future__ import annotations

import httpx
import pytest
from polling import wait_until

from ..conftest import MODEL
from ..helpers import script_ids

LONG = 3000  # tokens: far more than the test reads


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/responses", {"input": "Hi", "max_output_tokens": LONG}),
        (
            "/v1/messages",
            {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": LONG},
        ),
    ],
)
def test_a_client_leaving_a_stream_frees_its_row(
    server, engine, script, tiny_tokenizer, route, body
):
    script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>" + "la" * 8)
    generated_before = engine.stats().generated_tokens_total
    whole = {"model": MODEL, "stream": True, **body}
    with httpx.stream("POST", server.url(route), json=whole) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i == 12:
                break
    assert wait_until(lambda: engine.stats().running == 0, timeout=2.0)
    assert engine.stats().generated_tokens_total - generated_before < LONG
