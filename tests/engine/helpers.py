"""Running requests through an engine and collecting what they produce."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import mlx.core as mx

from mlx_gen.engine import LLMEngine
from mlx_gen.engine.types import GenerationEvent, GenerationRequest, SamplingParams


@dataclass
class Result:
    """What one request produced, per choice."""

    tokens: dict[int, list[int]] = field(default_factory=dict)
    text: dict[int, str] = field(default_factory=dict)
    final: dict[int, GenerationEvent] = field(default_factory=dict)
    events: list[GenerationEvent] = field(default_factory=list)

    def add(self, event: GenerationEvent) -> None:
        self.events.append(event)
        self.tokens.setdefault(event.index, []).extend(event.token_ids)
        self.text[event.index] = self.text.get(event.index, "") + event.text
        if event.finish_reason is not None:
            self.final[event.index] = event


async def collect(engine: LLMEngine, request: GenerationRequest) -> Result:
    result = Result()
    async for event in engine.submit(request):
        result.add(event)
    return result


def run(coro):
    return asyncio.run(coro)


def greedy(prompt: list[int], max_tokens: int = 16, **kw) -> GenerationRequest:
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0, **kw)
    return GenerationRequest(list(prompt), sampling)


def forcing(prompt_len: int, tokens: list[int]):
    """A logits processor that makes the model write `tokens`, then anything."""

    def force(context: mx.array, logits: mx.array) -> mx.array:
        step = context.size - prompt_len
        if step >= len(tokens):
            return logits
        hot = mx.arange(logits.shape[-1]) == tokens[step]
        return mx.where(hot, 0.0, -1e9)[None].astype(logits.dtype)

    return force
