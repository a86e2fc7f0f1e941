"""Token arrival clocks and the figures derived from them (steady-state decode
rate, TTFT, prefill rate), interleaved rounds and paired ratios: shared by
every benchmark."""

from __future__ import annotations

import itertools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Arrivals:
    """When each request's tokens arrived, from one common start."""

    start: float = field(default_factory=time.perf_counter)
    tokens: dict[Any, list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, key: Any, count: int, now: float | None = None) -> None:
        if count > 0:
            self.tokens[key].append(
                (time.perf_counter() if now is None else now, count)
            )

    def counts(self) -> dict[Any, int]:
        return {k: sum(n for _, n in v) for k, v in self.tokens.items()}

    def total_tps(self) -> float:
        """Every token / time from the start to the last token."""
        last = max(v[-1][0] for v in self.tokens.values())
        return sum(self.counts().values()) / (last - self.start)

    def ttfts(self) -> list[float]:
        return sorted(v[0][0] - self.start for v in self.tokens.values())

    def prefill_tps(self, prompt_tokens: int) -> float:
        """All prompt tokens / time until every request had its first token."""
        last_first = max(v[0][0] for v in self.tokens.values())
        return prompt_tokens / (last_first - self.start)

    def steady_decode(self) -> tuple[float, float]:
        """(tokens/s, seconds) while every request was decoding: from the last
        first token to the first request's last token.

        Tokens of one step reach different requests microseconds apart, so the
        window's edges are moved by a quarter of the median step gap: a step
        belongs to the window when it ends inside it."""
        series = list(self.tokens.values())
        begin = max(v[0][0] for v in series)
        end = min(v[-1][0] for v in series)
        gaps = [b[0] - a[0] for v in series for a, b in itertools.pairwise(v)]
        slack = statistics.median(gaps) / 4 if gaps else 0.0
        counted = sum(
            n for v in series for t, n in v if begin + slack < t <= end + slack
        )
        seconds = end - begin
        if counted == 0 or seconds <= 0:
            raise ValueError(
                "no decode window: every request ended before the last began"
            )
        return counted / seconds, seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": median(values), "min": min(values), "max": max(values)}


def run_rounds(
    benchmark: Any,
    systems: dict[str, Callable[[int], Any]],
    rounds: int,
    cold: tuple[str, ...] = (),
) -> dict[str, list[Any]]:
    """Each system once unmeasured (round 0: first-use allocations; not those
    named in `cold`, such as a server already warmed up), then `rounds` rounds
    timed by pytest-benchmark, each running every system once in an order that
    turns every round (A B, B A, ...), so that drift on a shared machine weighs
    on all alike. A system gets the round number (to pick its inputs); returns
    each system's results of rounds 1..rounds."""
    names = list(systems)
    for name in names:
        if name not in cold:
            systems[name](0)
    results: dict[str, list[Any]] = {name: [] for name in names}
    done = [0]

    def one_round() -> None:
        done[0] += 1
        order = names if done[0] % 2 else names[::-1]
        for name in order:
            results[name].append(systems[name](done[0]))

    benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    return results


def paired_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """One ratio per round: numerator and denominator measured side by side."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]
