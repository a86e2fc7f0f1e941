"""Harmony history: tool calls, tool results and which reasoning is kept."""

from __future__ import annotations

from typing import Any

from mlx_gen.chat import HarmonyFormat

from .helpers import WEATHER_TOOL, assert_ids_match_text, system

TOOL_TURN = [
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "Weather in Oslo?"},
    {
        "role": "assistant",
        "content": None,
        "reasoning": "Need the weather tool.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": -3}'},
]

# TOOL_TURN's user message and its still open tool turn, reasoning kept.
TOOL_TURN_TEXT = (
    "<|start|>user<|message|>Weather in Oslo?<|end|>"
    "<|start|>assistant<|channel|>analysis<|message|>"
    "Need the weather tool.<|end|>"
    "<|start|>assistant to=functions.get_weather<|channel|>commentary "
    '<|constrain|>json<|message|>{"city":"Oslo"}<|call|>'
    "<|start|>functions.get_weather to=assistant<|channel|>commentary"
    '<|message|>{"temp": -3}<|end|>'
)

TOOLS_DEVELOPER = (
    "<|start|>developer<|message|># Instructions\n"
    "\n"
    "Use tools.\n"
    "\n"
    "# Tools\n"
    "\n"
    "## functions\n"
    "\n"
    "namespace functions {\n"
    "\n"
    "// Gets the weather in a city.\n"
    "type get_weather = (_: {\n"
    "city: string,\n"
    "}) => any;\n"
    "\n"
    "} // namespace functions<|end|>"
)


def test_tool_call_and_result_keep_the_open_turns_reasoning(
    harmony: HarmonyFormat, harmony_tokenizer: Any
) -> None:
    rendered = harmony.render(TOOL_TURN, tools=[WEATHER_TOOL])
    assert rendered.text == (
        system("medium", functions=True)
        + TOOLS_DEVELOPER
        + TOOL_TURN_TEXT
        + "<|start|>assistant"
    )
    assert_ids_match_text(harmony_tokenizer, rendered)


def test_multi_turn_with_final_answer_drops_earlier_reasoning(
    harmony: HarmonyFormat, harmony_tokenizer: Any
) -> None:
    messages = [
        *TOOL_TURN,
        {
            "role": "assistant",
            "content": "It is -3 °C in Oslo.",
            "reasoning": "Tool says -3.",
        },
        {"role": "user", "content": "And tomorrow?"},
    ]
    rendered = harmony.render(messages, tools=[WEATHER_TOOL])
    assert rendered.text == (
        system("medium", functions=True)
        + TOOLS_DEVELOPER
        + "<|start|>user<|message|>Weather in Oslo?<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary "
        '<|constrain|>json<|message|>{"city":"Oslo"}<|call|>'
        "<|start|>functions.get_weather to=assistant<|channel|>commentary"
        '<|message|>{"temp": -3}<|end|>'
        "<|start|>assistant<|channel|>final<|message|>It is -3 °C in Oslo.<|end|>"
        "<|start|>user<|message|>And tomorrow?<|end|>"
        "<|start|>assistant"
    )
    assert_ids_match_text(harmony_tokenizer, rendered)


def test_history_drops_reasoning_of_finished_turns_only(
    harmony: HarmonyFormat,
) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet."},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Bye!", "reasoning": "Farewell."},
    ]
    rendered = harmony.render(messages, add_generation_prompt=False)
    assert rendered.text == (
        system("medium") + "<|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!<|end|>"
        "<|start|>user<|message|>Bye<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Bye!<|end|>"
    )


def test_preamble_beside_tool_calls_goes_to_commentary(
    harmony: HarmonyFormat,
) -> None:
    messages = [
        {"role": "user", "content": "Go"},
        {
            "role": "assistant",
            "content": "Checking two cities.",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                },
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "b", "content": "cold"},
        {"role": "tool", "tool_call_id": "a", "content": "warm"},
    ]
    text = harmony.render(messages, add_generation_prompt=False).text
    assert text.endswith(
        "<|start|>user<|message|>Go<|end|>"
        "<|start|>assistant<|channel|>commentary<|message|>"
        "Checking two cities.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary "
        '<|constrain|>json<|message|>{"city": "Rome"}<|call|>'
        "<|start|>assistant to=functions.get_weather<|channel|>commentary "
        '<|constrain|>json<|message|>{"city":"Oslo"}<|call|>'
        "<|start|>functions.get_weather to=assistant<|channel|>commentary"
        "<|message|>cold<|end|>"
        "<|start|>functions.get_weather to=assistant<|channel|>commentary"
        "<|message|>warm<|end|>"
    )


def test_reasoning_of_a_turn_that_never_answered_is_kept_after_a_user_message(
    harmony: HarmonyFormat,
) -> None:
    # The tool turn was interrupted by the user: it never ended in a final
    # answer, so its reasoning is not dropped (issue 12, row 12).
    messages = [*TOOL_TURN, {"role": "user", "content": "Never mind."}]
    text = harmony.render(messages, tools=[WEATHER_TOOL]).text
    assert text.endswith(
        TOOL_TURN_TEXT + "<|start|>user<|message|>Never mind.<|end|><|start|>assistant"
    )


def test_reasoning_before_the_last_final_answer_is_dropped_even_if_unanswered(
    harmony: HarmonyFormat,
) -> None:
    messages = [
        *TOOL_TURN,
        {"role": "user", "content": "Never mind."},
        {"role": "assistant", "content": "OK.", "reasoning": "Fine."},
        {"role": "user", "content": "Thanks"},
    ]
    text = harmony.render(messages, tools=[WEATHER_TOOL]).text
    assert "<|channel|>analysis" not in text
