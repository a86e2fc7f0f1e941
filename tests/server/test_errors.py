"""Every error in the OpenAI shape, with a request id, never a traceback."""

from __future__ import annotations

import httpx
import pytest

from mlx_gen.server.errors import loc_to_param

SHAPE = {"message", "type", "param", "code"}


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == SHAPE
    assert response.headers["x-request-id"]
    return body["error"]


def test_unknown_route_and_method(server):
    missing = httpx.get(server.url("/v1/nothing"))
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = httpx.get(server.url("/v1/chat/completions"))
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000]
)
def test_bodies_that_are_not_a_json_object(server, body):
    response = httpx.post(server.url("/v1/chat/completions"), content=body)
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"


def test_an_internal_error_is_a_plain_500(server, script, caplog):
    script.explode = True
    response = httpx.post(
        server.url("/v1/chat/completions"),
        json={"model": "tiny", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 500
    error = error_of(response)
    assert error["type"] == "server_error"
    assert "secret detail" not in response.text and "Traceback" not in response.text
    # The operator's log keeps what the client was not told.
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any("secret detail" in str(error) for error in logged)


def test_request_ids_are_echoed_when_sane(server):
    given = httpx.get(server.url("/health"), headers={"x-request-id": "abc-123.X"})
    assert given.headers["x-request-id"] == "abc-123.X"
    for bad in ("has space", "x" * 200, "a\tb"):
        answer = httpx.get(server.url("/health"), headers={"x-request-id": bad})
        assert answer.headers["x-request-id"] != bad
        assert len(answer.headers["x-request-id"]) == 32


def test_parameter_paths():
    assert loc_to_param(("messages", 3, "content")) == "messages[3].content"
    assert loc_to_param(("prompt", "list[constrained-int]", 0)) == "prompt[0]"
    assert (
        loc_to_param(("tool_choice", "NamedToolChoice", "type")) == "tool_choice.type"
    )
    assert loc_to_param(("logit_bias", "x", "[key]")) == "logit_bias.x"
