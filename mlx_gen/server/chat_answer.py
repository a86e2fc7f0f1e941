"""A chat answer in flight: engine events to chunks, or to the whole response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_gen.chat.base import OutputParser
from mlx_gen.engine.detokenizer import TokenDecoder
from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.chat_choices import ChatChoice
from mlx_gen.server.outputs import AnswerBase, chat_logprobs


class ChatAnswer(AnswerBase):
    """A choice may end here before it ends in the engine (a stop string in
    the content; the first tool call with `one_call`): `end_choice(index)` then
    frees its row in the engine, and its last engine event only brings usage."""

    chunk_object = "chat.completion.chunk"

    def __init__(
        self,
        request_id: str,
        model: str,
        n: int,
        new_parser: Callable[[], OutputParser],
        decoder: TokenDecoder,
        end_choice: Callable[[int], None],
        top_logprobs: int | None,  # None: no logprobs asked
        include_usage: bool = False,
        stops: list[str] | None = None,
        one_call: bool = False,
    ) -> None:
        super().__init__(request_id, model, n, include_usage)
        self.choices = [ChatChoice(i, new_parser(), stops, one_call) for i in range(n)]
        self.decoder = decoder
        self.end_choice = end_choice
        self.top_logprobs = top_logprobs
        self.logprobs: list[list[dict[str, Any]]] = [[] for _ in range(n)]

    def _choice(
        self, index: int, delta: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        return {
            "index": index,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }

    def start_chunks(self) -> list[dict[str, Any]]:
        role = {"role": "assistant", "content": ""}
        return [self.chunk([self._choice(i, dict(role))]) for i in range(self.n)]

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """The chunks of one engine event (none once the answer failed)."""
        choice = self.choices[event.index]
        self.generated += len(event.token_ids)
        was_open = choice.finish_reason is None
        pieces = [self._choice(event.index, d) for d in choice.feed(event)]
        if was_open and self.top_logprobs is not None and event.logprobs:
            entries = chat_logprobs(event.logprobs, self.decoder, self.top_logprobs)
            self.logprobs[event.index] += entries
            if not pieces:
                pieces.append(self._choice(event.index, {}))
            pieces[0]["logprobs"] = {"content": entries}
        ends_now = was_open and choice.finish_reason is not None
        if event.finish_reason is None:
            if ends_now:
                self.end_choice(event.index)
        elif not self.finish(event, choice.reasoning_tokens, check=was_open):
            return []
        if ends_now:
            pieces.append(self._choice(event.index, {}, choice.finish_reason))
        return [self.chunk([piece]) for piece in pieces]

    def response(self) -> dict[str, Any]:
        choices = []
        for choice in self.choices:
            logprobs = None
            if self.top_logprobs is not None:
                logprobs = {"content": self.logprobs[choice.index]}
            choices.append(
                {
                    "index": choice.index,
                    "message": choice.message(),
                    "logprobs": logprobs,
                    "finish_reason": choice.finish_reason,
                }
            )
        return {
            "id": self.request_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.tally.as_dict(),
        }
