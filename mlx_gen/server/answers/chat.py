"""A chat answer: engine events through the format's parser to OpenAI chunks,
or to the whole response.

Streaming and non-streaming answers are built from the same parsed events, so
both always agree on reasoning, content and tool calls.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from mlx_gen.chat.answer import collect
from mlx_gen.chat.base import (
    ContentDelta,
    MessageEnd,
    OutputParser,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.engine.detokenizer import TokenDecoder, decoder_for
from mlx_gen.engine.stop_strings import StopStrings
from mlx_gen.engine.types import GenerationEvent, TokenLogprob
from mlx_gen.server.answers.base import AnswerBase
from mlx_gen.server.served import ServedModel


def delta_of(event: ParsedEvent) -> dict[str, Any] | None:
    if isinstance(event, ReasoningDelta) and event.text:
        return {"reasoning": event.text, "reasoning_content": event.text}
    if isinstance(event, ContentDelta) and event.text:
        return {"content": event.text}
    if isinstance(event, ToolCallStart):
        call = {"name": event.name, "arguments": ""}
        return {
            "tool_calls": [
                {
                    "index": event.index,
                    "id": event.id,
                    "type": "function",
                    "function": call,
                }
            ]
        }
    if isinstance(event, ToolCallArgumentsDelta) and event.text:
        args = {"arguments": event.text}
        return {"tool_calls": [{"index": event.index, "function": args}]}
    return None  # a message end, or an empty text


def merge_deltas(events: list[ParsedEvent]) -> list[dict[str, Any]]:
    """Deltas of one engine step; runs of the same text kind become one."""
    out: list[dict[str, Any]] = []
    for event in events:
        delta = delta_of(event)
        if delta is None:
            continue
        last = out[-1] if out else None
        if (
            last is not None
            and last.keys() == delta.keys()
            and "tool_calls" not in delta
        ):
            for key in delta:
                last[key] += delta[key]
        else:
            out.append(delta)
    return out


def chat_logprobs(
    entries: list[TokenLogprob], decoder: TokenDecoder, top_n: int
) -> list[dict[str, Any]]:
    """The chat shape: one entry per token with its `top_logprobs`; `bytes`
    are the token's own, even when it holds only part of a character."""

    def one(token_id: int, logprob: float) -> dict[str, Any]:
        raw = decoder.token_bytes(token_id)
        text = raw.decode("utf-8", "replace")
        return {"token": text, "logprob": logprob, "bytes": list(raw)}

    return [
        one(e.token_id, e.logprob)
        | {"top_logprobs": [one(t, lp) for t, lp in e.top[:top_n]]}
        for e in entries
    ]


class ChatChoice:
    """One choice's answer. It may end before the engine's sequence does: at a
    stop string in the content, or, with `one_call`, once the first tool call
    is complete. The caller then frees the engine's row."""

    def __init__(
        self,
        index: int,
        parser: OutputParser,
        stops: list[str] | None = None,
        one_call: bool = False,
    ) -> None:
        self.index = index
        self.parser = parser
        # Stops apply to the content the user sees: never to reasoning,
        # tool-call arguments or the format's headers.
        self.stops = StopStrings(stops or [])
        self.one_call = one_call
        self.called = False
        self.parsed: list[ParsedEvent] = []
        self.finish_reason: str | None = None

    @property
    def reasoning_tokens(self) -> int:
        return self.parser.reasoning_tokens

    def feed(self, event: GenerationEvent) -> list[ParsedEvent]:
        """This step's parsed events; sets `finish_reason` once the choice
        ends. What the engine makes after that is dropped."""
        if self.finish_reason is not None:
            return []
        final = event.finish_reason is not None
        parsed = self.parser.feed(event.token_ids)
        if final:
            parsed += self.parser.finish()
        kept, ended = self._until_end(parsed)
        if ended != "stop" and (ended or final):
            # Held back as the possible start of a stop string: content after all.
            kept.append(ContentDelta(self.stops.flush()))
        self.parsed += kept
        if ended is not None:
            self.finish_reason = ended
        elif final:
            reason = event.finish_reason
            self.finish_reason = (
                "tool_calls" if reason == "stop" and self.called else reason
            )
        return kept

    def _until_end(
        self, events: list[ParsedEvent]
    ) -> tuple[list[ParsedEvent], str | None]:
        """The events up to the end of this choice, if they hold it, and its
        finish reason."""
        kept: list[ParsedEvent] = []
        for event in events:
            if isinstance(event, ContentDelta):
                text, matched = self.stops.feed(event.text)
                kept.append(ContentDelta(text))
                if matched:
                    return kept, "stop"
                continue
            kept.append(event)
            if isinstance(event, ToolCallStart):
                self.called = True
            elif isinstance(event, MessageEnd) and self.called and self.one_call:
                return kept, "tool_calls"  # the first call's message is complete
        return kept, None

    def message(self) -> dict[str, Any]:
        answer = collect(self.parsed, self.parser.reasoning_tokens)
        reasoning = answer.reasoning or None
        message: dict[str, Any] = {
            "role": "assistant",
            # Only a pure tool-call answer has no content at all (as OpenAI).
            "content": None
            if answer.tool_calls and not answer.content
            else answer.content,
            "reasoning": reasoning,
            "reasoning_content": reasoning,
        }
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        return message


Built = TypeVar("Built", bound="ChatAnswer")


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
        stream: bool = False,
        include_usage: bool = False,
        stops: list[str] | None = None,
        one_call: bool = False,
    ) -> None:
        super().__init__(request_id, model, n, stream, include_usage)
        self.choices = [ChatChoice(i, new_parser(), stops, one_call) for i in range(n)]
        self.decoder = decoder
        self.end_choice = end_choice
        self.top_logprobs = top_logprobs
        self.logprobs: list[list[dict[str, Any]]] = [[] for _ in range(n)]

    @classmethod
    def of(
        cls: type[Built], served: ServedModel, request_id: str, n: int, **options: Any
    ) -> Built:
        """The answer to `request_id` from `served`: parsed by its format,
        decoded by its tokenizer, a choice ended early freed in its engine."""
        return cls(
            request_id,
            served.name,
            n,
            served.chat_format.parser,
            decoder_for(served.tokenizer),
            partial(served.engine.abort, request_id),
            **options,
        )

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
        return self.chunks([self._choice(i, dict(role)) for i in range(self.n)])

    def advance(self, event: GenerationEvent) -> tuple[list[ParsedEvent], bool] | None:
        """Feed one engine event to its choice: the parsed events and whether
        the choice ended with them; None once the answer failed."""
        choice = self.choices[event.index]
        self.generated += len(event.token_ids)
        was_open = choice.finish_reason is None
        parsed = choice.feed(event)
        ends_now = was_open and choice.finish_reason is not None
        if event.finish_reason is None:
            if ends_now:
                self.end_choice(event.index)
        elif not self.finish(event, choice.reasoning_tokens, check=was_open):
            return None
        return parsed, ends_now

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """The chunks of one engine event when streamed (none once the answer
        failed); otherwise only what the whole response needs is kept."""
        choice = self.choices[event.index]
        was_open = choice.finish_reason is None
        step = self.advance(event)
        entries = None
        if was_open and self.top_logprobs is not None and event.logprobs:
            entries = chat_logprobs(event.logprobs, self.decoder, self.top_logprobs)
            self.logprobs[event.index] += entries
        if step is None or not self.stream:
            return []
        parsed, ends_now = step
        pieces = [self._choice(event.index, d) for d in merge_deltas(parsed)]
        if entries is not None:
            if not pieces:
                pieces.append(self._choice(event.index, {}))
            pieces[0]["logprobs"] = {"content": entries}
        if ends_now:
            pieces.append(self._choice(event.index, {}, choice.finish_reason))
        return self.chunks(pieces)

    def response(self) -> dict[str, Any]:
        return self.envelope(
            [
                {
                    "index": choice.index,
                    "message": choice.message(),
                    "logprobs": None
                    if self.top_logprobs is None
                    else {"content": self.logprobs[choice.index]},
                    "finish_reason": choice.finish_reason,
                }
                for choice in self.choices
            ]
        )
