"""A text completion answer: engine events to OpenAI chunks, or to the whole
response (legacy logprobs: parallel lists with text offsets)."""

from __future__ import annotations

from typing import Any

from mlx_gen.engine.detokenizer import TokenDecoder
from mlx_gen.engine.types import GenerationEvent, TokenLogprob
from mlx_gen.server.answers.base import AnswerBase


def completion_logprobs(
    entries: list[TokenLogprob], decoder: TokenDecoder, top_n: int, offset: int
) -> dict[str, Any]:
    """The legacy completions shape: parallel lists, text offsets from `offset`."""
    text = decoder.token_text
    tokens, offsets = [], []
    for e in entries:
        tokens.append(text(e.token_id))
        offsets.append(offset)
        offset += len(tokens[-1])
    return {
        "tokens": tokens,
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{text(t): lp for t, lp in e.top[:top_n]} for e in entries],
        "text_offset": offsets,
    }


class CompletionAnswer(AnswerBase):
    chunk_object = "text_completion"

    def __init__(
        self,
        request_id: str,
        model: str,
        n: int,
        decoder: TokenDecoder,
        top_logprobs: int | None,  # None: no logprobs asked
        echo: str = "",
        stream: bool = False,
        include_usage: bool = False,
    ) -> None:
        super().__init__(request_id, model, n, stream, include_usage)
        self.decoder = decoder
        self.top_logprobs = top_logprobs
        self.echo = echo
        self.text = [echo] * n
        self.logprobs: list[dict[str, list[Any]]] = [
            {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
            for _ in range(n)
        ]
        self.finish_reasons: list[str | None] = [None] * n

    @staticmethod
    def _choice(
        index: int, text: str, logprobs: Any = None, finish: str | None = None
    ) -> dict[str, Any]:
        return {
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": finish,
        }

    def start_chunks(self) -> list[dict[str, Any]]:
        if not self.echo:
            return []
        return self.chunks([self._choice(i, self.echo) for i in range(self.n)])

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """The chunks of one engine event when streamed (none once the answer
        failed); otherwise only what the whole response needs is kept."""
        i = event.index
        self.generated += len(event.token_ids)
        logprobs = None
        if self.top_logprobs is not None and event.logprobs:
            offset = len(self.text[i])
            logprobs = completion_logprobs(
                event.logprobs, self.decoder, self.top_logprobs, offset
            )
            for key, values in logprobs.items():
                self.logprobs[i][key] += values
        self.text[i] += event.text
        if event.finish_reason is not None:
            if not self.finish(event):
                return []
            self.finish_reasons[i] = event.finish_reason
        if not self.stream:
            return []
        pieces = []
        if event.text or logprobs:
            pieces.append(self._choice(i, event.text, logprobs))
        if event.finish_reason is not None:
            pieces.append(self._choice(i, "", None, event.finish_reason))
        return self.chunks(pieces)

    def response(self) -> dict[str, Any]:
        return self.envelope(
            [
                self._choice(
                    i,
                    self.text[i],
                    self.logprobs[i] if self.top_logprobs is not None else None,
                    self.finish_reasons[i],
                )
                for i in range(self.n)
            ]
        )
