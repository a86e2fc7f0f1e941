"""Models other than GPT-OSS: their tokenizer's own chat template, and `<think>` tags.

Rendering goes through `apply_chat_template` with the tools; the ids come from
transformers' `sanitize_control_tokens`, so control-token strings typed by a
user stay plain text here too. The parser splits `<think>...</think>` (or the
model's own thinking tags, as mlx-lm infers them) into reasoning, and
everything else into content.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from mlx_gen.chat.answer import parse_all
from mlx_gen.chat.base import (
    ContentDelta,
    Message,
    MessageEnd,
    ParsedAnswer,
    ParsedEvent,
    ReasoningDelta,
    ReasoningEffort,
    RenderedPrompt,
    Tool,
)
from mlx_gen.engine.detokenizer import Detokenizer, decoder_for

_PROBE = [{"role": "user", "content": "Hello"}]


class ThinkParser:
    """Streams text, moving what lies between the thinking tags to reasoning."""

    def __init__(
        self,
        text: Detokenizer,
        skip_ids: Collection[int],
        tags: tuple[str, str] | None,
        thinking: bool,
    ) -> None:
        self.reasoning_tokens = 0
        self._text = text
        self._skip = skip_ids
        self._tags = tags
        self._thinking = thinking
        self._held = ""  # text that may be the start of a tag
        self._trim = thinking  # whitespace right after a tag is layout, not text
        self._events: list[ParsedEvent] = []

    def feed(self, token_ids: list[int]) -> list[ParsedEvent]:
        for token_id in token_ids:
            if token_id in self._skip:
                continue
            if self._thinking:
                self.reasoning_tokens += 1
            self._split(self._text.add(token_id))
        return self._drain()

    def finish(self) -> list[ParsedEvent]:
        self._split(self._text.flush())
        self._emit(self._held)
        self._held = ""
        self._events.append(MessageEnd(channel=None))
        return self._drain()

    def _split(self, text: str) -> None:
        text = self._held + text
        self._held = ""
        while self._tags is not None:
            tag = self._tags[1] if self._thinking else self._tags[0]
            at = text.find(tag)
            if at < 0:
                keep = _partial_suffix(text, tag)
                self._held = text[len(text) - keep :]
                text = text[: len(text) - keep]
                break
            self._emit(text[:at])
            text = text[at + len(tag) :]
            self._thinking = not self._thinking
            self._trim = True
        self._emit(text)

    def _emit(self, text: str) -> None:
        if self._trim:
            text = text.lstrip()
            self._trim = not text
        if not text:
            return
        kind = ReasoningDelta if self._thinking else ContentDelta
        last = self._events[-1] if self._events else None
        if type(last) is kind:
            last.text += text
        else:
            self._events.append(kind(text))

    def _drain(self) -> list[ParsedEvent]:
        events, self._events = self._events, []
        return events


def _for_template(message: Message) -> Message:
    """A message in the shape Hugging Face chat templates expect.

    Templates read the reasoning as `reasoning_content` and tool-call
    arguments as a mapping, where the OpenAI API has a JSON string.
    """
    message = dict(message)
    if "reasoning" in message:
        message.setdefault("reasoning_content", message.pop("reasoning"))
    calls = message.get("tool_calls")
    if calls:
        message["tool_calls"] = [_call_for_template(call) for call in calls]
    return message


def _call_for_template(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            function["arguments"] = parsed
    return {**call, "function": function}


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that begins `tag`."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class TemplateFormat:
    name = "template"

    def __init__(
        self, tokenizer: Any, default_effort: ReasoningEffort = "medium"
    ) -> None:
        self._tokenizer = tokenizer
        # mlx-lm renders some models with Python code instead of Jinja; that
        # code takes no extra variables and cannot sanitize control tokens.
        self._python_template = getattr(tokenizer, "_chat_template", None) is not None
        self.default_effort: ReasoningEffort = default_effort
        self.stop_token_ids = sorted(tokenizer.eos_token_ids)
        self._tags: tuple[str, str] | None = None
        if tokenizer.has_thinking:
            self._tags = (tokenizer.think_start, tokenizer.think_end)
        tag_ids = set(tokenizer.think_start_tokens or ()) | set(
            tokenizer.think_end_tokens or ()
        )
        self._decoder = decoder_for(tokenizer)
        self._skip_ids = self._decoder.special_ids - tag_ids
        # Templates that open the thinking block in the prompt make the model
        # start inside it.
        self._starts_thinking = False
        if self._tags is not None and tokenizer.has_chat_template:
            probe = self._template(_PROBE, None, default_effort, True, tokenize=False)
            self._starts_thinking = probe.rstrip().endswith(self._tags[0])

    def render(
        self,
        messages: list[Message],
        tools: list[Tool] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        add_generation_prompt: bool = True,
    ) -> RenderedPrompt:
        if not self._tokenizer.has_chat_template:
            # A base model still serves raw completions; only chat needs this.
            raise ValueError("this model has no chat template")
        effort = reasoning_effort or self.default_effort
        args = (
            [_for_template(m) for m in messages],
            tools,
            effort,
            add_generation_prompt,
        )
        text = self._template(*args, tokenize=False)
        sanitize = {} if self._python_template else {"sanitize_control_tokens": True}
        ids = self._template(*args, tokenize=True, **sanitize)
        return RenderedPrompt(text=text, token_ids=list(ids))

    def _template(
        self,
        messages: list[Message],
        tools: list[Tool] | None,
        effort: ReasoningEffort,
        add_generation_prompt: bool,
        **kwargs: Any,
    ) -> Any:
        if not self._python_template:
            kwargs["reasoning_effort"] = effort
        return self._tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            add_generation_prompt=add_generation_prompt,
            **kwargs,
        )

    def parser(self) -> ThinkParser:
        return ThinkParser(
            self._decoder.stream(), self._skip_ids, self._tags, self._starts_thinking
        )

    def parse_all(self, token_ids: list[int]) -> ParsedAnswer:
        return parse_all(self.parser(), token_ids)
