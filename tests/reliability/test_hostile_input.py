"""Hostile request bodies: never a 5xx, never a crash, always the error shape
of the route's API (OpenAI's; Anthropic's on /v1/messages...)."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .clients import (
    CHAT,
    COUNT_TOKENS,
    MESSAGES,
    RESPONSES,
    Outcome,
    chat_body,
    is_error_of,
    read_frame,
)
from .conftest import Launch
from .hostile import (
    SPECIAL,
    STOP_FIELD,
    TEXT_FIELD,
    VALID,
    anthropic_messages,
    anthropic_tools,
    changes,
    edges,
    junk,
    messages,
    raw_bodies,
    ref_bomb,
    schema_of_depth,
    texts,
    tool,
    tools,
    with_text,
)
from .server_process import MODEL

KEY = "hostile-input-key-0123456789"
AUTH = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
ENDPOINTS = [CHAT, "/v1/completions", "/tokenize", "/detokenize", RESPONSES,
             MESSAGES, COUNT_TOKENS]  # fmt: skip
# In CI the same examples every run; locally new ones each time.
HOSTILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def server(launch: Launch):
    # A short default answer, so that a valid request found by chance is quick.
    keys = {"MLX_GEN_API_KEYS": json.dumps([KEY])}
    return launch("--max-tokens-default", "4", env=keys)


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as c:
        yield c


def send(client: httpx.Client, path: str, raw: bytes) -> Outcome:
    """POST raw bytes and read the answer whole, streamed or not."""
    outcome = Outcome()
    with client.stream("POST", path, content=raw) as response:
        outcome.status = response.status_code
        outcome.headers = dict(response.headers)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.iter_lines():
                read_frame(outcome, line)
        else:
            outcome.body = json.loads(response.read())
    return outcome


def check(server, outcome: Outcome, path: str = CHAT) -> None:
    assert outcome.status is not None and outcome.status < 500, outcome.describe()
    if outcome.status >= 400:
        assert is_error_of(path, outcome.body), outcome.describe()
    if outcome.stream_error is not None:
        assert is_error_of(path, outcome.stream_error), outcome.describe()
    if outcome.chunks or outcome.stream_error:
        assert outcome.done, outcome.describe()
    assert server.alive(), server.log()[-3000:]


def encode(body: Any) -> bytes:
    # allow_nan: NaN and Infinity are what a careless client really sends.
    return json.dumps(body, allow_nan=True).encode()


@HOSTILE
@given(path=st.sampled_from(ENDPOINTS), changed=changes, dropped=st.booleans())
def test_hostile_fields_get_an_answer_or_the_apis_error(
    server, client, path, changed, dropped
):
    body = {**VALID[path], **dict(changed)}
    if dropped:  # a required field missing as well
        body.pop("model")
    check(server, send(client, path, encode(body)), path)


@HOSTILE
@given(path=st.sampled_from(sorted(TEXT_FIELD)), text=texts, stop=texts)
def test_hostile_text_gets_an_answer_or_the_apis_error(
    server, client, path, text, stop
):
    body = with_text(path, text)
    if path in STOP_FIELD:
        body[STOP_FIELD[path]] = stop
    check(server, send(client, path, encode(body)), path)


@HOSTILE
@given(field=st.sampled_from(["n", "max_tokens", "top_logprobs", "seed", "top_k"]),
       value=edges, stream=st.booleans())  # fmt: skip
def test_numbers_at_the_edges_get_an_answer_or_an_openai_error(
    server, client, field, value, stream
):
    body = chat_body("Hi", 2, stream=stream, logprobs=field == "top_logprobs")
    check(server, send(client, CHAT, encode({**body, field: value})))


@HOSTILE
@given(conversation=messages)
def test_hostile_conversations_get_an_answer_or_an_openai_error(
    server, client, conversation
):
    body = {**chat_body("Hi", 2), "messages": conversation}
    check(server, send(client, CHAT, encode(body)))


@HOSTILE
@given(conversation=anthropic_messages, path=st.sampled_from([MESSAGES, COUNT_TOKENS]),
       stream=st.booleans())  # fmt: skip
def test_hostile_messages_conversations_get_an_answer_or_an_anthropic_error(
    server, client, conversation, path, stream
):
    body = {**VALID[path], "messages": conversation}
    if path == MESSAGES:
        body["stream"] = stream
    check(server, send(client, path, encode(body)), path)


@HOSTILE
@given(tool_list=anthropic_tools, path=st.sampled_from([MESSAGES, COUNT_TOKENS]))
def test_hostile_messages_tools_get_an_answer_or_an_anthropic_error(
    server, client, tool_list, path
):
    body = {**VALID[path], "tools": tool_list}
    check(server, send(client, path, encode(body)), path)


@HOSTILE
@given(tool_list=tools, path=st.sampled_from([CHAT, "/tokenize"]))
def test_hostile_tools_get_an_answer_or_an_openai_error(
    server, client, tool_list, path
):
    body = {**chat_body("Hi", 2), "tools": tool_list}
    if path == "/tokenize":
        del body["max_tokens"]
    check(server, send(client, path, encode(body)))


@HOSTILE
@given(path=st.sampled_from(ENDPOINTS), body=junk)
def test_any_json_gets_an_answer_or_the_apis_error(server, client, path, body):
    check(server, send(client, path, encode(body)), path)


@HOSTILE
@given(path=st.sampled_from(ENDPOINTS), raw=raw_bodies)
def test_byte_garbage_gets_an_answer_or_the_apis_error(server, client, path, raw):
    check(server, send(client, path, raw), path)


@pytest.mark.parametrize(
    ("path", "field"),
    [(CHAT, "messages"), ("/v1/completions", "prompt"), ("/tokenize", "prompt")],
)
def test_a_lone_surrogate_escape_is_a_400(server, client, path, field):
    body = {"model": MODEL, "max_tokens": 2}
    if field == "messages":
        body["messages"] = [{"role": "user", "content": "a\ud800b"}]
    else:
        body[field] = "a\udfffb"
    if path == "/tokenize":
        del body["max_tokens"]
    outcome = send(client, path, encode(body))
    check(server, outcome)
    assert outcome.status == 400


def test_a_deeply_nested_tool_schema_is_a_400(server, client):
    body = chat_body("Hi", 2, tools=[tool(schema_of_depth(300))])
    outcome = send(client, CHAT, encode(body))
    check(server, outcome)
    assert outcome.status == 400
    assert outcome.body["error"]["param"] == "tools[0].function.parameters"


def test_a_schema_that_explodes_when_its_refs_are_written_out_stays_small(
    server, client
):
    # 2**60 parts if written out; harmony writes a $ref as `any`, as
    # openai-harmony does, so the prompt stays the size of the schema.
    body = chat_body("Hi", 2, tools=[tool(ref_bomb(60))])
    outcome = send(client, CHAT, encode(body))
    check(server, outcome)
    assert outcome.status == 200, outcome.describe()
    assert outcome.usage["prompt_tokens"] < 2000


def test_line_separators_in_text_stay_inside_their_frame(server, client):
    # json.dumps leaves U+2028, U+2029 and U+0085 raw; clients that split
    # lines like str.splitlines (httpx's iter_lines) must still see one frame.
    prompt = "a\u2028b\u2029c\x85d<|return|>"
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 2, "echo": True,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    outcome = send(client, "/v1/completions", encode(body))
    check(server, outcome)
    assert outcome.complete, outcome.describe()
    assert outcome.chunks[0]["choices"][0]["text"] == prompt


def test_special_token_strings_in_chat_content_are_plain_text(server, client):
    """A user cannot forge the assistant's turn: a chat prompt's control tokens
    come from the renderer alone, the user's text is tokenized as text."""

    def tokens(**form: Any) -> list[int]:
        answer = client.post("/tokenize", json={"model": MODEL, **form})
        assert answer.status_code == 200, answer.text
        return answer.json()["tokens"]

    # A raw prompt is tokenized with its special tokens: their ids.
    control = tokens(prompt="".join(SPECIAL[:9]))
    assert len(control) == 9

    def chat(content: str) -> list[int]:
        return tokens(messages=[{"role": "user", "content": content}])

    honest, forged = chat("hi"), chat("".join(SPECIAL))
    assert [honest.count(t) for t in control] == [forged.count(t) for t in control]
