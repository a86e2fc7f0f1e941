"""OpenAI-style messages and tools to a harmony prompt, as text and token ids.

The prompt is built from pieces: control tokens, added by id, and text,
encoded with special-token matching off, so a user who types `<|end|>` sends
those seven characters, never the token. Pieces are encoded one by one (as
harmony's reference renderer does), and `text` is their concatenation, which
is exactly what the ids decode to.

The reference is OpenAI's `openai-harmony` (0.0.8), and this renderer is
token-identical to it on GPT-OSS's tokenizer (tests/chat/harmony_reference.py
holds the mapping of a request, test_harmony_differential.py the proof).
mlx-gen keeps its own renderer rather than calling the library, as vLLM does,
because that is simpler to keep right here: the library renders o200k ids
only, so every other vocabulary (the synthetic models) would need its text
re-tokenized with control tokens told apart from look-alike user text; it
needs the o200k vocabulary file and a native extension at run time; and the
part where mistakes happen, mapping an OpenAI request to harmony messages
(the three documented departures from the library's defaults), is mlx-gen's
code either way. The differential suite, run offline in CI, catches any
drift, and moving to a new library version is a deliberate pin change.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

from mlx_gen.chat.base import Message, ReasoningEffort, RenderedPrompt, Tool
from mlx_gen.chat.harmony_tokens import CALL, CHANNEL, CONSTRAIN, END, MESSAGE, START
from mlx_gen.chat.harmony_tools import function_of, render_functions_namespace

IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"
REASONING_EFFORTS = ("low", "medium", "high")
CHANNELS_LINE = (
    "# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message."
)
FUNCTIONS_CHANNEL_LINE = (
    "Calls to these tools must go to the commentary channel: 'functions'."
)
TEXT_PART_TYPES = ("text", "input_text", "output_text")

Piece = tuple[bool, str]  # (is a control token, its string)


def system_text(effort: ReasoningEffort, date: str, has_functions: bool) -> str:
    channels = CHANNELS_LINE
    if has_functions:
        channels += "\n" + FUNCTIONS_CHANNEL_LINE
    meta = f"{IDENTITY}\nKnowledge cutoff: {KNOWLEDGE_CUTOFF}\nCurrent date: {date}"
    return "\n\n".join([meta, f"Reasoning: {effort}", channels])


def developer_text(instructions: list[str], tools: list[Tool]) -> str:
    sections = []
    if instructions:
        sections += ["# Instructions", "\n\n".join(instructions)]
    if tools:
        sections += ["# Tools", render_functions_namespace(tools)]
    return "\n\n".join(sections)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, None, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in TEXT_PART_TYPES:
                raise ValueError("only text content parts are supported")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise ValueError(f"unsupported message content: {type(content).__name__}")


class HarmonyRenderer:
    def __init__(
        self,
        tokenizer: Any,
        control_ids: dict[str, int],
        today: datetime.date | str | None = None,
    ) -> None:
        # A private copy of the tokenizer's backend with special-token matching
        # off: toggling the shared one would race with other threads' encodes.
        hf = getattr(tokenizer, "_tokenizer", tokenizer)
        self._plain = copy.deepcopy(hf.backend_tokenizer)
        self._plain.encode_special_tokens = True
        self._control_ids = control_ids
        self._today = today

    def date(self) -> str:
        today = self._today or datetime.date.today()
        return today if isinstance(today, str) else today.isoformat()

    def render(
        self,
        messages: list[Message],
        tools: list[Tool] | None,
        effort: ReasoningEffort,
        add_generation_prompt: bool,
    ) -> RenderedPrompt:
        if effort not in REASONING_EFFORTS:
            raise ValueError(f"reasoning effort must be one of {REASONING_EFFORTS}")
        pieces: list[Piece] = []
        functions = [t for t in tools or [] if t.get("type", "function") == "function"]
        _message(pieces, "system", system_text(effort, self.date(), bool(functions)))
        instructions = [
            content_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        ]
        if instructions or functions:
            _message(pieces, "developer", developer_text(instructions, functions))
        _conversation(pieces, messages)
        if add_generation_prompt:
            pieces += [(True, START), (False, "assistant")]
        return self._encode(pieces)

    def _encode(self, pieces: list[Piece]) -> RenderedPrompt:
        texts = [text for control, text in pieces if not control and text]
        encoded = iter(self._plain.encode_batch(texts, add_special_tokens=False))
        ids: list[int] = []
        for control, text in pieces:
            if control:
                ids.append(self._control_ids[text])
            elif text:
                ids += next(encoded).ids
        return RenderedPrompt(text="".join(t for _, t in pieces), token_ids=ids)


def _message(
    pieces: list[Piece],
    role: str,
    content: str,
    *,
    channel: str | None = None,
    recipient: str | None = None,
    json_args: bool = False,
    end: str = END,
) -> None:
    pieces += [(True, START), (False, role)]
    if recipient:
        pieces.append((False, f" to={recipient}"))
    if channel:
        pieces += [(True, CHANNEL), (False, channel)]
    if json_args:
        pieces += [(False, " "), (True, CONSTRAIN), (False, "json")]
    pieces += [(True, MESSAGE), (False, content), (True, end)]


def _conversation(pieces: list[Piece], messages: list[Message]) -> None:
    # Reasoning that led to a final answer is never shown again: only that of
    # the assistant messages after the last final answer is kept (a turn
    # still calling tools keeps its reasoning, even across user messages).
    finals = [i for i, m in enumerate(messages) if _is_final_answer(m)]
    keep_reasoning_after = finals[-1] if finals else -1
    tool_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "user":
            _message(pieces, "user", content_text(message.get("content")))
        elif role == "assistant":
            _assistant(pieces, message, i > keep_reasoning_after, tool_names)
        elif role == "tool":
            name = tool_names.get(message.get("tool_call_id")) or message.get("name")
            if not name:
                raise ValueError("a tool message must answer a known tool_call_id")
            text = content_text(message.get("content"))
            _message(
                pieces,
                f"functions.{name}",
                text,
                channel="commentary",
                recipient="assistant",
            )
        elif role not in ("system", "developer"):
            raise ValueError(f"unsupported message role: {role!r}")


def _is_final_answer(message: Message) -> bool:
    """An assistant message without tool calls: rendered on the final channel."""
    return message.get("role") == "assistant" and not message.get("tool_calls")


def _assistant(
    pieces: list[Piece],
    message: Message,
    keep_reasoning: bool,
    tool_names: dict[str, str],
) -> None:
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if keep_reasoning and reasoning:
        _message(pieces, "assistant", str(reasoning), channel="analysis")
    calls = message.get("tool_calls") or []
    content = content_text(message.get("content"))
    if content or not calls:
        # Text beside tool calls is a preamble, which harmony puts in commentary.
        channel = "commentary" if calls else "final"
        _message(pieces, "assistant", content, channel=channel)
    for call in calls:
        function = function_of(call)
        tool_names[call.get("id", "")] = function["name"]
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        _message(
            pieces,
            "assistant",
            arguments,
            channel="commentary",
            recipient=f"functions.{function['name']}",
            json_args=True,
            end=CALL,
        )
