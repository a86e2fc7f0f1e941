"""Figures from a load run: latency percentiles, throughput, failures, targets.

Named as vLLM's benchmarks name them (TTFT, TPOT, ITL, E2EL), with the
machine they were measured on; tables.py lays them out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any
from urllib.parse import urlparse

from mlx_gen.bench.loadgen import LevelRun
from mlx_gen.hosts import is_loopback
from mlx_gen.units import GB

PERCENTILES = (50, 95, 99)
METRICS = ("ttft", "answer_ttft", "tpot", "itl", "e2el")
# The product's targets: GPT-OSS-20B on a 32 GB Apple Silicon Mac.
TARGET_IDLE_TTFT_S = 0.100
TARGET_SUCCESS_RATE = 0.95
TARGET_DECODE_TOKS = 150.0
TARGET_USERS = 100
# Fewer streamed text chunks per output token than this: the stream is coalesced.
COALESCED_BELOW = 0.5


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _distribution(values: list[float]) -> dict[str, float | None]:
    stats: dict[str, float | None] = {"mean": _mean(values)}
    stats.update({f"p{q}": percentile(values, q) for q in PERCENTILES})
    return stats


def summarize(run: LevelRun) -> dict[str, Any]:
    """Every figure of one level, in seconds, tokens and requests."""
    ok = [r for r in run.results if r.ok]
    failures = Counter(r.error for r in run.results if not r.ok)
    output_tokens = sum(r.output_tokens for r in ok)
    samples = {
        "ttft": [r.ttft for r in ok if r.ttft is not None],
        "answer_ttft": [r.answer_ttft for r in ok if r.answer_ttft is not None],
        "tpot": [r.tpot for r in ok if r.tpot is not None],
        "itl": [gap for r in ok for gap in r.itl],
        "e2el": [r.e2el for r in ok if r.e2el is not None],
    }
    tpot_p50 = percentile(samples["tpot"], 50)
    return {
        "level": run.level.name,
        "concurrency": run.level.concurrency,
        "rate": run.level.rate,
        "effort": run.level.effort,
        "phase": run.level.phase,
        "requests": len(run.results),
        "completed": len(ok),
        "failed": len(run.results) - len(ok),
        "success_rate": len(ok) / len(run.results) if run.results else 0.0,
        "failures": dict(sorted(failures.items())),
        "duration_s": run.duration,
        "output_tokens": output_tokens,
        "output_tokens_per_request_mean": output_tokens / len(ok) if ok else 0.0,
        "reasoning_tokens_mean": _mean([r.reasoning_tokens for r in ok]),
        "streamed": sum(r.stream for r in run.results),
        "retried": sum(r.attempt > 1 for r in run.results),
        "prompt_tokens_mean": _mean([r.prompt_tokens for r in ok if r.prompt_tokens]),
        "usage_reported": all(r.usage_reported for r in ok) if ok else False,
        "output_tok_s": output_tokens / run.duration if run.duration else 0.0,
        "requests_per_s": len(ok) / run.duration if run.duration else 0.0,
        "decode_tok_s_per_stream": 1 / tpot_p50 if tpot_p50 else None,
        "text_chunks_per_token": (
            sum(r.text_chunks for r in ok) / output_tokens if output_tokens else None
        ),
        **{f"{m}_s": _distribution(samples[m]) for m in METRICS},
    }


def requests_of(run: LevelRun) -> list[dict[str, Any]]:
    return [{**asdict(r), "tpot": r.tpot} for r in run.results]


def hardware_line(info: dict[str, Any], url: str) -> str:
    memory = info["memory_bytes"]
    ram = f"{memory / GB:.0f} GB RAM" if memory else "RAM ?"
    kind = "Apple Silicon" if info["apple_silicon"] else "not Apple Silicon"
    where = (
        "client and server on this machine (loopback)"
        if is_loopback(urlparse(url).hostname or "")
        else "client on this machine; the server's hardware is not known here"
    )
    return (
        f"{info['machine']}, {info['cpu']}, {info['cpu_cores']} cores, {ram},"
        f" {kind}: {where}"
    )


def target_checks(levels: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """The targets next to the figures measured for them (None: not measured).

    Speed and latency targets are GPT-OSS-20B's: for another model the figure
    is shown but judged against nothing. The success target is about 100+
    concurrent users, so it is judged only on a run that reached them.
    """
    single = next((s for s in levels if s["concurrency"] == 1 and not s["rate"]), None)
    idle_ttft = single["ttft_s"]["p50"] if single else None
    decode = single["decode_tok_s_per_stream"] if single else None
    # A server that sends many tokens per chunk hides its decode speed from
    # any client: TPOT then measures the gaps between chunks, not tokens.
    chunked = single and (single["text_chunks_per_token"] or 0) < COALESCED_BELOW
    if chunked:
        decode = None
    worst = min((s["success_rate"] for s in levels), default=None)
    widest = max((s["concurrency"] or 0 for s in levels), default=0)
    is_20b = "gpt-oss-20b" in model.lower()
    not_20b = f"does not apply: {model} is not GPT-OSS-20B"

    def check(
        name: str, target: str, value: Any, met: bool | None, why: str | None
    ) -> dict:
        if why is not None or value is None:
            met = None
        return {
            "name": name,
            "target": target,
            "measured": value,
            "met": met,
            "applies": why is None,
            "why": why,
        }

    return [
        check(
            "idle TTFT p50 (concurrency 1)",
            f"< {TARGET_IDLE_TTFT_S * 1000:.0f} ms",
            idle_ttft,
            idle_ttft is not None and idle_ttft < TARGET_IDLE_TTFT_S,
            None if is_20b else not_20b,
        ),
        check(
            f"success rate (worst level, up to {widest} concurrent)",
            f">= {TARGET_SUCCESS_RATE:.0%} at {TARGET_USERS}+ concurrent",
            worst,
            worst is not None and worst >= TARGET_SUCCESS_RATE,
            None
            if widest >= TARGET_USERS
            else f"does not apply: fewer than {TARGET_USERS} concurrent users",
        ),
        check(
            "single-stream decode (1 / TPOT p50)"
            + (": not measurable, tokens arrive in few chunks" if chunked else ""),
            f">= {TARGET_DECODE_TOKS:.0f} tok/s",
            decode,
            decode is not None and decode >= TARGET_DECODE_TOKS,
            None if is_20b else not_20b,
        ),
    ]
