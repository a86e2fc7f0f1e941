"""POST /v1/completions: raw text (or token ids) in, text out; no chat format."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.engine.detokenizer import TokenDecoder, decoder_for
from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.context import info_of
from mlx_gen.server.generation import (
    check_model,
    check_token_ids,
    read_body,
    resolve_max_tokens,
    sampling_params,
    submit,
)
from mlx_gen.server.outputs import AnswerBase, completion_logprobs, new_id
from mlx_gen.server.respond import respond
from mlx_gen.server.schemas_text import CompletionRequest
from mlx_gen.server.state import state_of
from mlx_gen.server.structured import completion_constraint


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
        include_usage: bool = False,
    ) -> None:
        super().__init__(request_id, model, n, include_usage)
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
        return [self.chunk([self._choice(i, self.echo)]) for i in range(self.n)]

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        i = event.index
        self.generated += len(event.token_ids)
        pieces = []
        logprobs = None
        if self.top_logprobs is not None and event.logprobs:
            offset = len(self.text[i])
            logprobs = completion_logprobs(
                event.logprobs, self.decoder, self.top_logprobs, offset
            )
            for key, values in logprobs.items():
                self.logprobs[i][key] += values
        if event.text or logprobs:
            pieces.append(self._choice(i, event.text, logprobs))
        self.text[i] += event.text
        if event.finish_reason is not None:
            if not self.finish(event):
                return []
            self.finish_reasons[i] = event.finish_reason
            pieces.append(self._choice(i, "", None, event.finish_reason))
        return [self.chunk([piece]) for piece in pieces]

    def response(self) -> dict[str, Any]:
        choices = [
            self._choice(
                i,
                self.text[i],
                self.logprobs[i] if self.top_logprobs is not None else None,
                self.finish_reasons[i],
            )
            for i in range(self.n)
        ]
        return {
            "id": self.request_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.tally.as_dict(),
        }


async def completions(request: Request) -> Response:
    state = state_of(request)
    served = state.served
    info = info_of(request.scope)
    body = await read_body(request, CompletionRequest)
    check_model(served, body.model)
    info.model = served.name
    if isinstance(body.prompt, str):
        prompt_text = body.prompt
        prompt_ids = await run_in_threadpool(served.tokenizer.encode, body.prompt)
    else:
        check_token_ids(body.prompt, served, "prompt")
        prompt_ids = list(body.prompt)
        prompt_text = served.tokenizer.decode(prompt_ids) if body.echo else ""
    constraint = await completion_constraint(state, body.response_format, body)
    max_tokens = resolve_max_tokens(
        body.max_tokens, len(prompt_ids), served, state.settings.max_tokens_default
    )
    n = body.n or 1
    reservation = state.limiter.admit(info.key_id, len(prompt_ids) + max_tokens * n)
    stop_ids = sorted(served.tokenizer.eos_token_ids or [])
    sampling = sampling_params(body, served, max_tokens, stop_ids)
    sampling.logprobs = body.logprobs is not None
    sampling.top_logprobs = body.logprobs or 0
    answer = CompletionAnswer(
        new_id("cmpl"),
        served.name,
        n,
        decoder_for(served.tokenizer),
        body.logprobs,
        echo=prompt_text if body.echo else "",
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
    )
    events = submit(
        served,
        prompt_ids,
        sampling,
        answer.request_id,
        reservation,
        body.user,
        constraint,
    )
    return await respond(
        request, state, answer, events, reservation, len(prompt_ids), bool(body.stream)
    )
