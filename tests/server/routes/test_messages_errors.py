"""/v1/messages' errors in Anthropic's shape, from the route, the middlewares
and the router alike; the other routes keep OpenAI's."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from ..conftest import MODEL
from ..helpers import script_ids
from .test_chat_completions import THINK_THEN_ANSWER
from .test_messages import count, prompt_of

ROUTE = "/v1/messages"
HI = [{"role": "user", "content": "Hi"}]
BODY = {"model": MODEL, "messages": HI, "max_tokens": 2}
KEYS = ["sk-messages-0123456789"]
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}


def anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    """The error's message, once its status, shape and type are checked."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    assert response.headers["x-request-id"]
    return body["error"]["message"]


def test_max_tokens_is_required(server, claude):
    body = {key: value for key, value in BODY.items() if key != "max_tokens"}
    refused = httpx.post(server.url(ROUTE), json=body)
    message = anthropic_error(refused, 400, "invalid_request_error")
    assert "max_tokens" in message
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.messages.create(model=MODEL, messages=HI, max_tokens=0)
    assert raised.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "content[0]': the type must be one of",
        ),
        ({"messages": [*HI, {"role": "assistant", "content": "The"}]}, "prefill"),
        ({"messages": [{"role": "assistant", "content": [RESULT]}]}, "tool_result"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "budget_tokens"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
        ({"stop_sequences": [""]}, "stop_sequences"),
        ({"temperature": 1.5}, "temperature"),
        ({"service": "x"}, "service"),
    ],
)
def test_bad_bodies_are_invalid_requests(server, change, named):
    refused = httpx.post(server.url(ROUTE), json=BODY | change)
    assert named in anthropic_error(refused, 400, "invalid_request_error")


def test_a_tool_result_must_answer_a_known_call(server):
    result = {"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": [result]}]}
    for path, extra in ((ROUTE, {"max_tokens": 2}), (ROUTE + "/count_tokens", {})):
        refused = httpx.post(server.url(path), json=body | extra)
        assert "tool_call_id" in anthropic_error(refused, 400, "invalid_request_error")


def test_not_found_errors(server, claude):
    with pytest.raises(anthropic.NotFoundError) as model:
        claude.messages.create(model="claude-opus-4", messages=HI, max_tokens=2)
    assert model.value.body["error"]["type"] == "not_found_error"
    missing = httpx.post(server.url(ROUTE + "/batches"), json=BODY)
    anthropic_error(missing, 404, "not_found_error")
    wrong_method = httpx.get(server.url(ROUTE))
    anthropic_error(wrong_method, 405, "invalid_request_error")
    # Only this route family: the others keep the OpenAI shape.
    openai_shaped = httpx.post(server.url("/v1/messagesx"), json=BODY)
    assert openai_shaped.json()["error"]["code"] == "not_found"


def test_an_internal_error_is_an_api_error(server, script):
    script.explode = True
    failed = httpx.post(server.url(ROUTE), json=BODY)
    message = anthropic_error(failed, 500, "api_error")
    assert "secret detail" not in message


def test_a_generation_failing_is_an_api_error(server, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    script.fail_after = 3
    failed = httpx.post(server.url(ROUTE), json=BODY | {"max_tokens": 50})
    assert "Generation failed" in anthropic_error(failed, 500, "api_error")


def test_auth_takes_either_header_and_refuses_in_anthropics_shape(make_server):
    server = make_server(api_keys=KEYS)
    base = server.url("")
    # x-api-key, then Authorization: Bearer.
    for key in ({"api_key": KEYS[0]}, {"auth_token": KEYS[0]}):
        with anthropic.Anthropic(base_url=base, max_retries=0, **key) as client:
            reply = client.messages.create(model=MODEL, messages=HI, max_tokens=1)
            assert reply.usage.output_tokens == 1
            counted = client.messages.count_tokens(model=MODEL, messages=HI)
            assert counted.input_tokens == prompt_of(reply.usage)
    with (
        anthropic.Anthropic(base_url=base, api_key="sk-wrong", max_retries=0) as wrong,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        wrong.messages.create(model=MODEL, messages=HI, max_tokens=1)
    assert refused.value.body["error"]["type"] == "authentication_error"
    for path in (ROUTE, ROUTE + "/count_tokens"):
        missing = httpx.post(server.url(path), json=BODY)
        anthropic_error(missing, 401, "authentication_error")


def test_a_body_over_the_limit_is_request_too_large(make_server):
    server = make_server(max_body_bytes=1024)
    big = BODY | {"system": "x" * 2000}
    too_large = httpx.post(server.url(ROUTE), json=big)
    anthropic_error(too_large, 413, "request_too_large")

    def chunked():
        yield b'{"model": "tiny", "system": "'
        yield b"x" * 2000
        yield b'"}'

    streamed = httpx.post(server.url(ROUTE + "/count_tokens"), content=chunked())
    anthropic_error(streamed, 413, "request_too_large")


def test_draining_is_overloaded(make_server):
    server = make_server()
    server.state.draining = True
    refused = httpx.post(server.url(ROUTE), json=BODY)
    anthropic_error(refused, 503, "overloaded_error")
    assert refused.headers["retry-after"]


def test_count_tokens_counts_the_rendered_prompt(server):
    body = {"messages": HI, "system": [{"type": "text", "text": "Be brief."}]}
    with_system = count(server, **body)
    chat = {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, *HI],
    }
    tokenized = httpx.post(server.url("/tokenize"), json=chat).json()["count"]
    assert with_system == tokenized > count(server, messages=HI)
