"""The harmony chat format of GPT-OSS: renderer, stop tokens and parser together."""

from __future__ import annotations

import datetime
from typing import Any

from mlx_gen.chat.answer import parse_all
from mlx_gen.chat.base import (
    Message,
    ParsedAnswer,
    ReasoningEffort,
    RenderedPrompt,
    Tool,
)
from mlx_gen.chat.harmony_parser import HarmonyParser
from mlx_gen.chat.harmony_render import REASONING_EFFORTS, HarmonyRenderer
from mlx_gen.chat.harmony_tokens import CALL, RETURN
from mlx_gen.engine.detokenizer import decoder_for


class HarmonyFormat:
    name = "harmony"

    def __init__(
        self,
        tokenizer: Any,
        control_ids: dict[str, int],
        default_effort: ReasoningEffort = "medium",
        today: datetime.date | str | None = None,
    ) -> None:
        if default_effort not in REASONING_EFFORTS:
            raise ValueError(f"reasoning effort must be one of {REASONING_EFFORTS}")
        self.default_effort: ReasoningEffort = default_effort
        # Never <|end|>: the model ends analysis messages with it and goes on.
        self.stop_token_ids = [control_ids[RETURN], control_ids[CALL]]
        self._control_ids = control_ids
        self._renderer = HarmonyRenderer(tokenizer, control_ids, today)
        self._decoder = decoder_for(tokenizer)

    def render(
        self,
        messages: list[Message],
        tools: list[Tool] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        add_generation_prompt: bool = True,
    ) -> RenderedPrompt:
        effort = reasoning_effort or self.default_effort
        return self._renderer.render(messages, tools, effort, add_generation_prompt)

    def parser(self) -> HarmonyParser:
        # Special tokens other than harmony's own carry no text of their own.
        decoder = self._decoder
        return HarmonyParser(self._control_ids, decoder.stream(decoder.special_ids))

    def parse_all(self, token_ids: list[int]) -> ParsedAnswer:
        return parse_all(self.parser(), token_ids)
