"""The Messages bodies: their checks, and the chat request each stands for."""

from __future__ import annotations

import pytest

from mlx_gen.server.errors import APIError
from mlx_gen.server.schemas.messages import CountTokensRequest, MessagesRequest

from ..helpers import refusal

CALL = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": "é"}}
BASE = {"model": "tiny", "max_tokens": 8}


def chat_of(**body):
    return MessagesRequest.model_validate(BASE | body).to_chat()


def test_blocks_become_chat_messages():
    chat = chat_of(
        system=[{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "need it", "signature": "s"},
                    {"type": "text", "text": "Checking."},
                    CALL,
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1",
                     "content": [{"type": "text", "text": "21"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_1",
                     "content": "down", "is_error": True},
                    {"type": "text", "text": "And ", "cache_control":
                     {"type": "ephemeral"}},
                    {"type": "text", "text": "tomorrow?"},
                ],
            },
        ],
    )  # fmt: skip
    assert [m.to_format() for m in chat.messages] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning": "need it",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a":"é"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "21"},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: down"},
        {"role": "user", "content": "And tomorrow?"},
    ]


def test_tools_and_tool_choice_become_chat_ones():
    tool = {"name": "f", "description": "d", "input_schema": {"type": "object"}}
    hi = [{"role": "user", "content": "Hi"}]
    expected = {
        "auto": "auto",
        "any": "required",
        "none": "none",
    }
    for kind, chat_choice in expected.items():
        chat = chat_of(messages=hi, tools=[tool], tool_choice={"type": kind})
        assert chat.tool_choice == chat_choice
        assert chat.parallel_tool_calls is None
    named = chat_of(
        messages=hi,
        tools=[tool],
        tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True},
    )
    assert named.tool_choice.function.name == "f"
    assert named.parallel_tool_calls is False
    function = named.tools[0].function
    assert (function.name, function.description) == ("f", "d")
    assert function.parameters == {"type": "object"}


def test_sampling_and_user_reach_the_chat_request():
    chat = chat_of(
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "u1"},
        seed=7,
    )
    assert (chat.temperature, chat.top_p, chat.top_k) == (0.5, 0.9, 40)
    assert (chat.user, chat.seed, chat.requested_max_tokens) == ("u1", 7, 8)


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        (None, None),
        ({"type": "disabled"}, "low"),
        ({"type": "enabled", "budget_tokens": 4095}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, "high"),
    ],
)
def test_thinking_chooses_the_effort(thinking, effort):
    chat = chat_of(messages=[{"role": "user", "content": "Hi"}], thinking=thinking)
    assert chat.effort == effort


def refused(body: dict, schema=MessagesRequest) -> APIError:
    return refusal(
        schema, BASE | {"messages": [{"role": "user", "content": "Hi"}]} | body
    )


def test_refusals_name_what_is_wrong():
    hi = [{"role": "user", "content": "Hi"}]
    missing = refusal(MessagesRequest, {"model": "tiny", "messages": hi})
    assert missing.param == "max_tokens" and "Missing" in missing.message
    image = refused({"messages": [{"role": "user", "content": [{"type": "image"}]}]})
    assert image.param == "messages[0].content[0]"
    assert "'text', 'thinking', 'tool_use', 'tool_result'" in image.message
    prefill = refused(
        {"messages": [{"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "The"}]}
    )  # fmt: skip
    assert "prefill" in prefill.message
    misplaced = refused({"messages": [{"role": "user", "content": [CALL]}]})
    assert "tool_use" in misplaced.message
    budget = refused({"thinking": {"type": "enabled", "budget_tokens": 1023}})
    assert budget.param == "thinking.budget_tokens"
    unknown = refused({"container": "x"})
    assert unknown.code == "unsupported_parameter"
    # count_tokens takes no generation settings.
    counted = refusal(
        CountTokensRequest,
        {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}],
         "max_tokens": 8},
    )  # fmt: skip
    assert counted.param == "max_tokens"


@pytest.mark.parametrize(
    ("output_config", "thinking", "effort"),
    [
        ({"effort": "medium"}, {"type": "disabled"}, "medium"),
        ({"effort": "max"}, None, "high"),
        ({"effort": "xhigh"}, None, "high"),
        ({}, {"type": "adaptive", "display": "summarized"}, None),
    ],
)
def test_an_output_effort_comes_before_the_thinking_budget(
    output_config, thinking, effort
):
    chat = chat_of(
        messages=[{"role": "user", "content": "Hi"}],
        output_config=output_config,
        thinking=thinking,
        cache_control={"type": "ephemeral"},
    )
    assert chat.effort == effort


def test_an_output_format_is_the_chat_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat = chat_of(
        messages=[{"role": "user", "content": "Hi"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert chat.response_format.answer_schema() == schema
    hidden = refused({"thinking": {"type": "adaptive", "display": "omitted"}})
    assert hidden.param == "thinking.display"
