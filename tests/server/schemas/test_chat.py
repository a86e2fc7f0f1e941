"""The chat body: bounds, refusals that name the parameter, normalization."""

from __future__ import annotations

import pytest

from mlx_gen.server.schemas.chat import ChatCompletionRequest

from ..helpers import refusal

USER = [{"role": "user", "content": "hi"}]


def chat(**fields: object) -> dict:
    return {"model": "m", "messages": USER, **fields}


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"logprobs": True, "foo": 1}, "foo", "unsupported_parameter"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages[0].content", "unsupported_value"),
    ],
)  # fmt: skip
def test_unimplemented_parameters_are_refused_by_name(fields, param, code):
    error = refusal(ChatCompletionRequest, chat(**fields))
    assert (error.status, error.param, error.code) == (400, param, code)
    assert param in error.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 17}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 1 << 30}, "max_completion_tokens"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"logit_bias": {"12": 101}}, "logit_bias.12"),
        ({"logit_bias": {"x": 1}}, "logit_bias.x"),
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"seed": -1}, "seed"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": "low", "reasoning": {"effort": "high"}}, "reasoning"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"model": ""}, "model"),
    ],
)
def test_out_of_bounds_values_are_400_naming_the_field(fields, param):
    error = refusal(ChatCompletionRequest, chat(**fields))
    assert (error.status, error.param) == (400, param)
    assert error.type == "invalid_request_error"


def test_missing_model_is_named():
    error = refusal(ChatCompletionRequest, {"messages": USER})
    assert error.param == "model" and "Missing" in error.message


def test_effort_and_budget_normalization():
    req = ChatCompletionRequest.model_validate(
        chat(reasoning={"effort": "high"}, max_tokens=7, stop="END")
    )
    assert req.effort == "high"
    assert req.requested_max_tokens == 7
    assert req.stop == ["END"]
    req = ChatCompletionRequest.model_validate(
        chat(max_tokens=7, max_completion_tokens=9)
    )
    assert req.requested_max_tokens == 9


def test_replayed_assistant_message_renders_as_plain_dict():
    replay = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": [],
        "reasoning_content": "thinking",
        "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "f", "arguments": "{}"}},
        ],
    }  # fmt: skip
    req = ChatCompletionRequest.model_validate(chat(messages=[*USER, replay]))
    msg = req.messages[1].to_format()
    assert msg == {
        "role": "assistant",
        "content": "",
        "reasoning": "thinking",
        "tool_calls": replay["tool_calls"],
    }


def test_text_parts_are_joined():
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    req = ChatCompletionRequest.model_validate(
        chat(messages=[{"role": "user", "content": parts}])
    )
    assert req.messages[0].content == "ab"


def test_tool_choice_none_hides_tools():
    tool = {"type": "function", "function": {"name": "f"}}
    req = ChatCompletionRequest.model_validate(chat(tools=[tool], tool_choice="none"))
    assert req.tools_for_format() is None
    req = ChatCompletionRequest.model_validate(chat(tools=[tool]))
    assert req.tools_for_format() == [tool]
