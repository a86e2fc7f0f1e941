"""Structured output end to end: the official SDK against a real server on
the random-weight tiny model, where only the constraint makes output valid."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from typing import Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from .conftest import MODEL
from .structured_schemas import DIGIT, SCHEMAS, WORD, obj

HI = [{"role": "user", "content": "Hi"}]
GET_POINT = {
    "type": "function",
    "function": {
        "name": "get_point",
        "parameters": obj({"x": DIGIT, "label": WORD}),
        "strict": True,
    },
}
SET_MODE = {
    "type": "function",
    "function": {"name": "set_mode", "parameters": obj({"mode": {"enum": ["a", "b"]}})},
}


def json_format(schema: dict) -> dict:
    return {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }


def chat(client: openai.OpenAI, **fields):
    """A chat completion of "Hi" from the served model."""
    return client.chat.completions.create(model=MODEL, messages=HI, **fields)


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url("/v1"), api_key="none", max_retries=0)


def run_async(server, scenario):
    """Run `scenario(client)` with an async client that is closed after."""

    async def main():
        base = server.url("/v1")
        async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as c:
            return await scenario(c)

    return asyncio.run(main())


def test_every_kind_of_schema_is_followed(server):
    async def ask(aclient, i: int, schema: dict):
        reply = await aclient.chat.completions.create(
            model=MODEL,
            messages=HI,
            response_format=json_format(schema),
            max_completion_tokens=160,
            seed=i,
            extra_body={"max_reasoning_tokens": 4},
        )
        return reply.choices[0]

    async def all_of_them(aclient):
        return await asyncio.gather(
            *(ask(aclient, i, s) for i, s in enumerate(SCHEMAS.values()))
        )

    choices = run_async(server, all_of_them)
    for name, choice in zip(SCHEMAS, choices, strict=True):
        assert choice.finish_reason == "stop", (name, choice.message.content)
        jsonschema.validate(json.loads(choice.message.content), SCHEMAS[name])
        assert "<|" not in choice.message.content


def test_the_model_reasons_first_within_its_budget(client):
    reply = chat(
        client,
        response_format=json_format(SCHEMAS["flat"]),
        max_completion_tokens=120,
        seed=3,
        extra_body={"max_reasoning_tokens": 10},
        logprobs=True,
    )
    message = reply.choices[0].message
    jsonschema.validate(json.loads(message.content), SCHEMAS["flat"])
    reasoning = message.model_extra["reasoning"]
    assert reasoning  # the analysis channel was free
    assert reasoning_length(reply.choices[0]) <= 10


def test_budget_zero_answers_directly(client):
    reply = chat(
        client,
        response_format=json_format(SCHEMAS["string_enum"]),
        max_completion_tokens=40,
        extra_body={"max_reasoning_tokens": 0},
        logprobs=True,
    )
    text = "".join(t.token for t in reply.choices[0].logprobs.content)
    assert text.startswith("<|channel|>final<|message|>{")
    assert json.loads(reply.choices[0].message.content)["color"] in (
        "red",
        "green",
        "blue",
    )


class Pet(BaseModel):
    name: str = Field(max_length=6)
    legs: int = Field(ge=0, le=8)
    kind: Literal["cat", "dog"]
    toys: list[Literal["ball", "rope"]] = Field(max_length=2)


def test_parse_returns_the_pydantic_object(client):
    reply = client.chat.completions.parse(
        model=MODEL,
        messages=HI,
        response_format=Pet,
        max_completion_tokens=120,
        seed=5,
        extra_body={"max_reasoning_tokens": 0},
    )
    pet = reply.choices[0].message.parsed
    assert isinstance(pet, Pet) and pet.kind in ("cat", "dog")


def test_json_object_gives_an_object(client):
    reply = chat(
        client,
        response_format={"type": "json_object"},
        max_completion_tokens=60,
        seed=1,
        extra_body={"max_reasoning_tokens": 0},
    )
    choice = reply.choices[0]
    # An unbounded object ends in time, with 'length', or valid.
    if choice.finish_reason == "stop":
        assert isinstance(json.loads(choice.message.content), dict)
    else:
        assert choice.finish_reason == "length"
        assert choice.message.content.startswith("{")


@pytest.mark.parametrize("seed", range(4))
def test_tool_choice_required_always_calls_a_valid_tool(client, seed):
    reply = chat(
        client,
        tools=[GET_POINT, SET_MODE],
        tool_choice="required",
        max_completion_tokens=80,
        seed=seed,
        extra_body={"max_reasoning_tokens": 3},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    tool = {"get_point": GET_POINT, "set_mode": SET_MODE}[call.function.name]
    jsonschema.validate(
        json.loads(call.function.arguments), tool["function"]["parameters"]
    )


def test_named_tool_choice_calls_that_tool(client):
    for seed in range(3):
        reply = chat(
            client,
            tools=[GET_POINT, SET_MODE],
            tool_choice={"type": "function", "function": {"name": "set_mode"}},
            max_completion_tokens=60,
            seed=seed,
            extra_body={"max_reasoning_tokens": 2},
        )
        (call,) = reply.choices[0].message.tool_calls
        assert call.function.name == "set_mode"
        assert json.loads(call.function.arguments)["mode"] in ("a", "b")


def test_streaming_gives_the_same_answer_and_usage(client):
    args = dict(
        model=MODEL,
        messages=HI,
        response_format=json_format(SCHEMAS["nested"]),
        max_completion_tokens=120,
        seed=11,
        extra_body={"max_reasoning_tokens": 5},
    )
    whole = client.chat.completions.create(**args)
    stream = client.chat.completions.create(
        **args, stream=True, stream_options={"include_usage": True}
    )
    content, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            content += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert content == whole.choices[0].message.content
    jsonschema.validate(json.loads(content), SCHEMAS["nested"])
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_completions_follow_the_schema(client):
    schema = SCHEMAS["array_of_objects"]
    reply = client.completions.create(
        model=MODEL,
        prompt="Points:",
        max_tokens=80,
        seed=2,
        extra_body={"response_format": json_format(schema)},
    )
    assert reply.choices[0].finish_reason == "stop", reply.choices[0].text
    jsonschema.validate(json.loads(reply.choices[0].text), schema)


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"response_format": json_format({"type": "foo"})},
         "response_format", "Invalid type: foo"),
        ({"response_format": json_format({"not": {"type": "string"}})},
         "response_format", "not"),
        ({"response_format": json_format({"type": "string", "pattern": "(a"})},
         "response_format", "regex"),
        ({"response_format": {"type": "json_schema"}},
         "response_format", "json_schema"),
        ({"tools": [GET_POINT], "tool_choice": {"type": "function",
          "function": {"name": "nope"}}}, "tool_choice", "'nope'"),
        ({"tool_choice": "required"}, "tool_choice", "no tools"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters":
          {"type": "integer", "minimum": 5, "maximum": 1}}}],
          "tool_choice": "required"}, "tools", "minimum"),
        ({"max_reasoning_tokens": -1}, "max_reasoning_tokens", "greater than"),
    ],
)  # fmt: skip
def test_bad_structured_requests_are_400_naming_the_problem(
    server, fields, param, words
):
    body = {"model": MODEL, "messages": HI, "max_tokens": 8, **fields}
    response = httpx.post(server.url("/v1/chat/completions"), json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"].startswith(param)
    assert words in error["message"]


def test_a_bad_completion_schema_is_400(server):
    body = {
        "model": MODEL,
        "prompt": "x",
        "response_format": json_format({"type": "array", "uniqueItems": True}),
    }
    response = httpx.post(server.url("/v1/completions"), json=body)
    assert response.status_code == 400
    assert "uniqueItems" in response.json()["error"]["message"]


def test_metrics_count_constrained_requests_and_mask_time(server, client):
    def scrape() -> dict[str, float]:
        text = httpx.get(server.url("/metrics")).text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("mlx_gen_constrain")
        }

    before = scrape()
    chat(
        client,
        response_format=json_format(SCHEMAS["flat"]),
        max_completion_tokens=60,
        extra_body={"max_reasoning_tokens": 0},
    )
    after = scrape()
    count = "mlx_gen_constrained_requests_total"
    assert after[count] == before.get(count, 0) + 1
    assert after["mlx_gen_constraint_mask_seconds"] > before.get(
        "mlx_gen_constraint_mask_seconds", 0
    )


def test_constrained_neighbours_leave_greedy_rows_unchanged(server):
    prompts = [f"Once upon a time {i}" for i in range(16)]

    async def plain(aclient, prompt: str) -> str:
        reply = await aclient.completions.create(
            model=MODEL, prompt=prompt, max_tokens=12, temperature=0
        )
        return reply.choices[0].text

    async def constrained(aclient, i: int) -> dict:
        schema = list(SCHEMAS.values())[i % len(SCHEMAS)]
        reply = await aclient.chat.completions.create(
            model=MODEL,
            messages=HI,
            response_format=json_format(schema),
            max_completion_tokens=160,
            seed=100 + i,
            extra_body={"max_reasoning_tokens": 4},
        )
        content = reply.choices[0].message.content
        jsonschema.validate(json.loads(content), schema)
        return content

    async def scenario(aclient):
        alone = [await plain(aclient, p) for p in prompts]
        mixed = await asyncio.gather(
            *(plain(aclient, p) for p in prompts),
            *(constrained(aclient, i) for i in range(16)),
        )
        return alone, mixed[:16]

    alone, together = run_async(server, scenario)
    assert together == alone


def reasoning_length(choice) -> int:
    """Tokens of the analysis message (0 when the turn answered directly)."""
    tokens = [t.token for t in choice.logprobs.content]
    if "".join(tokens).startswith("<|channel|>final"):
        return 0
    return tokens.index("<|end|>") - tokens.index("<|message|>") - 1


def test_a_budget_alone_bounds_the_reasoning_of_a_free_answer(client):
    reply = chat(
        client,
        max_completion_tokens=40,
        seed=8,
        logprobs=True,
        extra_body={"max_reasoning_tokens": 3},
    )
    choice = reply.choices[0]
    assert reasoning_length(choice) <= 3
    text = "".join(t.token for t in choice.logprobs.content)
    assert "<|channel|>final<|message|>" in text


def test_the_registry_budget_applies_to_constrained_answers(served, make_server):
    server = make_server(dataclasses.replace(served, default_max_reasoning_tokens=2))
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    reply = chat(
        client,
        response_format=json_format(SCHEMAS["string_enum"]),
        max_completion_tokens=60,
        seed=4,
        logprobs=True,
    )
    choice = reply.choices[0]
    json.loads(choice.message.content)
    assert reasoning_length(choice) <= 2


def test_vllm_regex_and_choice_constrain_chat_and_completions(client):
    answer = chat(
        client,
        max_completion_tokens=40,
        seed=6,
        extra_body={"guided_regex": r"[A-Z]{2}-\d{3}", "max_reasoning_tokens": 0},
    )
    assert re.fullmatch(r"[A-Z]{2}-\d{3}", answer.choices[0].message.content)
    text = client.completions.create(
        model=MODEL,
        prompt="Pick:",
        max_tokens=20,
        seed=6,
        extra_body={"guided_choice": ["left", "right", "up or down"]},
    )
    assert text.choices[0].text in ("left", "right", "up or down")


def test_two_answer_constraints_are_400(server):
    body = {
        "model": MODEL,
        "messages": HI,
        "guided_choice": ["a"],
        "response_format": {"type": "json_object"},
    }
    response = httpx.post(server.url("/v1/chat/completions"), json=body)
    assert response.status_code == 400
    assert "response_format and guided_choice" in response.json()["error"]["message"]


def test_a_forced_call_streams_its_arguments(client):
    stream = chat(
        client,
        tools=[GET_POINT],
        tool_choice="required",
        max_completion_tokens=80,
        seed=9,
        stream=True,
        extra_body={"max_reasoning_tokens": 2},
    )
    names, arguments, finish = [], "", None
    for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            names += [call.function.name] if call.function.name else []
            arguments += call.function.arguments or ""
        finish = choice.finish_reason or finish
    assert names == ["get_point"] and finish == "tool_calls"
    jsonschema.validate(json.loads(arguments), GET_POINT["function"]["parameters"])
