"""A text completion answer: engine events to OpenAI chunks, or to the whole
response (legacy logprobs: parallel lists with text offsets).

A request may carry a batch of prompts, each with n choices: prompt k's choice
i is choice k*n + i (the engine's stream numbers them so). With echo and
logprobs, a choice's logprobs start with its prompt's tokens, the first of
them unscored (null); vLLM's `prompt_logprobs` are a list per choice, null
first, then a dict per token: its id and its alternatives' ids, each to its
logprob, rank and text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_gen.engine.detokenizer import TokenDecoder
from mlx_gen.engine.types import GenerationEvent, TokenLogprob
from mlx_gen.server.answers.base import AnswerBase

LEGACY_KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


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
        "top_logprobs": [_by_text(e.top[:top_n], text) for e in entries],
        "text_offset": offsets,
    }


def _by_text(
    top: list[tuple[int, float]], text: Callable[[int], str]
) -> dict[str, float]:
    """Alternatives by their text; of tokens written alike, the most likely."""
    out: dict[str, float] = {}
    for token, logprob in top:
        out.setdefault(text(token), logprob)
    return out


def echoed_logprobs(
    prompt: list[int], scores: list[TokenLogprob], decoder: TokenDecoder, top_n: int
) -> dict[str, Any]:
    """A prompt's tokens in the legacy shape: the first unscored, from offset 0."""
    first = decoder.token_text(prompt[0])
    rest = completion_logprobs(scores, decoder, top_n, len(first))
    return {
        "tokens": [first, *rest["tokens"]],
        "token_logprobs": [None, *rest["token_logprobs"]],
        "top_logprobs": [None, *rest["top_logprobs"]],
        "text_offset": [0, *rest["text_offset"]],
    }


def vllm_prompt_logprobs(
    scores: list[TokenLogprob], decoder: TokenDecoder, top_n: int
) -> list[dict[int, dict[str, Any]] | None]:
    """vLLM's shape: null for the first token, then for each token a dict of
    its own id and its `top_n` alternatives' ids."""

    def entry(logprob: float, rank: int | None, token: int) -> dict[str, Any]:
        return {"logprob": logprob, "rank": rank, "decoded_token": text(token)}

    text = decoder.token_text
    out: list[dict[int, dict[str, Any]] | None] = [None]
    for s in scores:
        position = {s.token_id: entry(s.logprob, s.rank, s.token_id)}
        for rank, (token, logprob) in enumerate(s.top[:top_n], start=1):
            position.setdefault(token, entry(logprob, rank, token))
        out.append(position)
    return out


class CompletionAnswer(AnswerBase):
    chunk_object = "text_completion"

    def __init__(
        self,
        request_id: str,
        model: str,
        n: int,
        decoder: TokenDecoder,
        top_logprobs: int | None,  # None: no logprobs asked
        prompts: list[list[int]],
        echoes: list[str] | None = None,  # each prompt's text, with echo
        prompt_logprobs: int | None = None,  # vLLM's, asked
        stream: bool = False,
        include_usage: bool = False,
    ) -> None:
        super().__init__(request_id, model, n * len(prompts), stream, include_usage)
        self.decoder = decoder
        self.top_logprobs = top_logprobs
        self.choices_per_prompt = n
        self.prompts = prompts
        self.echoes = echoes
        self.prompt_logprobs = prompt_logprobs
        self.text = [echoes[c // n] if echoes else "" for c in range(self.n)]
        self.logprobs: list[dict[str, list[Any]]] = [
            {key: [] for key in LEGACY_KEYS} for _ in range(self.n)
        ]
        self.prompt_scores: list[list[Any] | None] = [None] * self.n
        self.finish_reasons: list[str | None] = [None] * self.n

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
        if not self.echoes:
            return []
        return self.chunks([self._choice(i, self.text[i]) for i in range(self.n)])

    def _event_logprobs(self, event: GenerationEvent) -> dict[str, Any] | None:
        """The legacy logprobs of an event: its prompt's first, with echo."""
        i, top = event.index, self.top_logprobs
        parts = []
        if self.echoes and event.prompt_logprobs is not None:
            prompt = self.prompts[i // self.choices_per_prompt]
            parts.append(
                echoed_logprobs(prompt, event.prompt_logprobs, self.decoder, top)
            )
        if event.logprobs:
            offset = len(self.text[i])
            parts.append(completion_logprobs(event.logprobs, self.decoder, top, offset))
        if not parts:
            return None
        return {key: [v for part in parts for v in part[key]] for key in LEGACY_KEYS}

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """The chunks of one engine event when streamed (none once the answer
        failed); otherwise only what the whole response needs is kept."""
        i = event.index
        self.generated += len(event.token_ids)
        logprobs = None
        if self.top_logprobs is not None:
            logprobs = self._event_logprobs(event)
            for key, values in (logprobs or {}).items():
                self.logprobs[i][key] += values
        if self.prompt_logprobs is not None and event.prompt_logprobs is not None:
            self.prompt_scores[i] = vllm_prompt_logprobs(
                event.prompt_logprobs, self.decoder, self.prompt_logprobs
            )
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
        choices = []
        for i in range(self.n):
            logprobs = self.logprobs[i] if self.top_logprobs is not None else None
            choice = self._choice(i, self.text[i], logprobs, self.finish_reasons[i])
            if self.prompt_logprobs is not None:
                choice["prompt_logprobs"] = self.prompt_scores[i]
            choices.append(choice)
        return self.envelope(choices)
