"""What a load run sends: prompt and output lengths (fixed or uniform), real
prompts from a JSONL file, a mix of streamed and whole requests, chat or
completions, and a reasoning effort per level.

Every draw comes from a seeded random.Random, so a run can be repeated.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Short common words: about one token each in most BPE vocabularies.
_WORD_TEXT = """
time year people way day man thing woman life child world school state family
student group country problem hand part place case week company system program
question work government number night point home water room mother area money
story fact month lot right study book eye job word business issue side kind head
house service friend father power hour game line end member law car city name
team minute idea kid body face others
"""
_WORDS = _WORD_TEXT.split()
ENDPOINTS = ("chat", "completions")


@dataclass(frozen=True)
class Span:
    """A length drawn uniformly from low..high (both included); fixed when equal."""

    low: int
    high: int | None = None

    @property
    def top(self) -> int:
        return self.low if self.high is None else self.high

    def draw(self, rng: random.Random) -> int:
        return self.low if self.top == self.low else rng.randint(self.low, self.top)

    def scaled(self, convert: Callable[[int], int]) -> Span:
        return Span(convert(self.low), convert(self.top))

    def __str__(self) -> str:
        return str(self.low) if self.top == self.low else f"{self.low}:{self.top}"


def parse_span(text: str) -> Span:
    """`N` (fixed) or `LOW:HIGH` (uniform), positive integers."""
    parts = text.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"not N or LOW:HIGH: {text!r}") from None
    if len(values) > 2 or min(values) <= 0 or values != sorted(values):
        raise ValueError(f"not N or LOW:HIGH with 0 < LOW <= HIGH: {text!r}")
    return Span(values[0], values[-1])


@dataclass(frozen=True)
class RequestSpec:
    """One request: chat `messages` or completions `prompt` text."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int
    stream: bool
    effort: str | None = None

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


@dataclass(frozen=True)
class Workload:
    prompt_words: Span = Span(128)
    max_tokens: Span = Span(128)
    prompts: tuple[tuple[dict[str, str], ...], ...] = ()  # from a JSONL file
    stream_fraction: float = 1.0
    endpoint: str = "chat"

    def draw(self, rng: random.Random, effort: str | None) -> RequestSpec:
        if self.prompts:
            messages = rng.choice(self.prompts)
        else:
            text = synthetic_prompt(rng, self.prompt_words.draw(rng))
            messages = ({"role": "user", "content": text},)
        stream = rng.random() < self.stream_fraction
        return RequestSpec(messages, self.max_tokens.draw(rng), stream, effort)


def synthetic_prompt(rng: random.Random, words: int) -> str:
    """`words` seeded words: distinct per request, so no prefix cache helps."""
    return " ".join(rng.choice(_WORDS) for _ in range(max(words, 1)))


def _messages(line: Any) -> tuple[dict[str, str], ...]:
    if isinstance(line, str):
        return ({"role": "user", "content": line},)
    if isinstance(line, dict) and isinstance(line.get("prompt"), str):
        return ({"role": "user", "content": line["prompt"]},)
    if isinstance(line, dict) and isinstance(line.get("messages"), list):
        messages = line["messages"]
        if messages and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in messages
        ):
            return tuple({"role": m["role"], "content": m["content"]} for m in messages)
    raise ValueError(
        'each line must be a string, {"prompt": TEXT} or'
        ' {"messages": [{"role": ..., "content": TEXT}, ...]}'
    )


def load_prompts(path: Path) -> tuple[tuple[dict[str, str], ...], ...]:
    """Prompts from a JSONL file: one text or chat conversation per line."""
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            prompts.append(_messages(json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return tuple(prompts)
