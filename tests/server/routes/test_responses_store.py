"""Stored responses: continuation by previous_response_id, retrieval,
deletion, limits and per-key isolation; the real server, the official SDK."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..conftest import MODEL
from ..helpers import script_ids
from .test_chat_completions import THINK_THEN_ANSWER, TOOL_CALL, WEATHER_TOOL
from .test_responses import ASK, RESPONSES_TOOL, tool_loop_history


def sdk(server, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url("/v1"), api_key=key, max_retries=0)


def test_tool_loop_through_previous_response_id(server, client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    first = client.responses.create(
        model=MODEL, input=ASK, tools=[RESPONSES_TOOL], max_output_tokens=64
    )
    call = first.output[-1]
    assert call.type == "function_call"

    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "21"}
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[result],
        tools=[RESPONSES_TOOL],
        max_output_tokens=64,
    )
    assert second.output_text == "Hello there"
    assert second.previous_response_id == first.id
    # The same conversation as the chat route renders it.
    history = tool_loop_history(call, "21")
    chat = {"model": MODEL, "messages": history, "tools": [WEATHER_TOOL]}
    count = httpx.post(server.url("/tokenize"), json=chat).json()["count"]
    assert second.usage.input_tokens == count


def test_get_input_items_and_delete(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    made = client.responses.create(model=MODEL, input="Hi", max_output_tokens=64)
    fetched = client.responses.retrieve(made.id)
    assert fetched.model_dump() == made.model_dump()
    items = client.responses.input_items.list(made.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == [
        ("message", "user", "Hi")
    ]
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(made.id)
    assert gone.value.code == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="Hi", previous_response_id=made.id)


def test_store_false_keeps_nothing(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    made = client.responses.create(
        model=MODEL, input="Hi", store=False, max_output_tokens=64
    )
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)


def test_one_key_never_reads_anothers(make_server, script, tiny_tokenizer):
    server = make_server(api_keys=["key-a", "key-b"])
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    a, b = sdk(server, "key-a"), sdk(server, "key-b")
    made = a.responses.create(model=MODEL, input="Hi", max_output_tokens=64)
    assert a.responses.retrieve(made.id).id == made.id
    with pytest.raises(openai.NotFoundError):
        b.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        b.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        b.responses.create(model=MODEL, input="Hi", previous_response_id=made.id)
    assert a.responses.retrieve(made.id).id == made.id


def test_least_recently_used_is_evicted(make_server, script, tiny_tokenizer):
    server = make_server(responses_store_size=2)
    client = sdk(server)
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    ids = [
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=64).id
        for _ in range(2)
    ]
    client.responses.retrieve(ids[0])  # now the most recently used
    newest = client.responses.create(model=MODEL, input="Hi", max_output_tokens=64)
    assert client.responses.retrieve(ids[0]).id == ids[0]
    assert client.responses.retrieve(newest.id).id == newest.id
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(ids[1])


def test_responses_past_their_age_are_gone(make_server, script, tiny_tokenizer):
    server = make_server(responses_store_max_age=0.001)
    client = sdk(server)
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    made = client.responses.create(model=MODEL, input="Hi", max_output_tokens=64)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
