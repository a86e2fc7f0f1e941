"""What a profile's results mean: the service-level objective (SLO) a level
holds or breaks, goodput, a ramp's capacity and knee, a spike's recovery, a
soak's drift, and the per-second time series the report plots.

Pure functions of the requests' results and level summaries (report.py).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from mlx_gen.bench.report import percentile
from mlx_gen.bench.request import RequestResult

# Errors a client should never see from a service that degrades gracefully.
UNGRACEFUL = ("timeout", "deadline", "incomplete_stream", "stream_error")
# More users than this gain less than this share of throughput: past the knee.
KNEE_GAIN = 0.10


@dataclass(frozen=True)
class Slo:
    success_rate: float = 0.95
    ttft_p95_s: float = 2.0
    itl_p95_s: float = 0.25

    def breaks(self, summary: dict[str, Any]) -> list[str]:
        """The objectives a level summary misses (empty: it holds)."""
        missed = []
        if summary["success_rate"] < self.success_rate:
            missed.append(f"success {summary['success_rate']:.1%}")
        for key, limit in (("ttft_s", self.ttft_p95_s), ("itl_s", self.itl_p95_s)):
            p95 = summary[key]["p95"]
            if p95 is not None and p95 > limit:
                missed.append(f"{key[:-2].upper()} p95 {p95 * 1000:.0f} ms")
        return missed

    def met_by(self, result: RequestResult) -> bool:
        """One answered request within the latency objectives (goodput)."""
        if not result.ok:
            return False
        if result.ttft is not None and result.ttft > self.ttft_p95_s:
            return False
        return not result.itl or percentile(result.itl, 95) <= self.itl_p95_s

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def goodput(results: list[RequestResult], duration: float, slo: Slo) -> dict:
    good = [r for r in results if slo.met_by(r)]
    return {
        "requests_per_s": len(good) / duration if duration else 0.0,
        "output_tok_s": sum(r.output_tokens for r in good) / duration
        if duration
        else 0.0,
        "share": len(good) / len(results) if results else 0.0,
    }


def ramp_verdict(levels: list[dict[str, Any]], slo: Slo) -> dict[str, Any]:
    """Capacity: the last level before the first that breaks the SLO. Knee:
    the last level whose throughput still rose by KNEE_GAIN over the one
    before; beyond it more users mostly wait."""
    capacity = broken_at = None
    broken: list[str] = []
    for summary in levels:
        broken = slo.breaks(summary)
        if broken:
            broken_at = summary["concurrency"]
            break
        capacity = summary["concurrency"]
    knee = levels[0]["concurrency"] if levels else None
    for before, after in itertools.pairwise(levels):
        if after["output_tok_s"] < before["output_tok_s"] * (1 + KNEE_GAIN):
            break
        knee = after["concurrency"]
    return {
        "capacity": capacity,
        "knee": knee,
        "broken_at": broken_at,
        "broken_by": broken,
    }


def time_series(results: list[RequestResult], slo: Slo, end: float) -> list[dict]:
    """Per second of the run, by when requests finished: output and goodput
    tokens per second, answered and failed requests, TTFT p95."""
    seconds = max(1, math.ceil(end))
    buckets: list[list[RequestResult]] = [[] for _ in range(seconds)]
    for r in results:
        buckets[min(seconds - 1, max(0, int(r.done_at)))].append(r)
    series = []
    for second, bucket in enumerate(buckets):
        ok = [r for r in bucket if r.ok]
        series.append(
            {
                "t": second,
                "output_tok_s": sum(r.output_tokens for r in ok),
                "goodput_tok_s": sum(r.output_tokens for r in ok if slo.met_by(r)),
                "ok": len(ok),
                "failed": len(bucket) - len(ok),
                "ttft_p95_s": percentile([r.ttft for r in ok if r.ttft], 95),
            }
        )
    return series


def drift(results: list[RequestResult], start: float, end: float) -> dict[str, Any]:
    """Throughput and latency of the first tenth of a soak against its last."""
    tenth = (end - start) / 10

    def figures(low: float) -> dict[str, float | None]:
        part = [r for r in results if low <= r.sent_at < low + tenth]
        ok = [r for r in part if r.ok]
        return {
            "output_tok_s": sum(r.output_tokens for r in ok) / tenth,
            "ttft_p50_s": percentile([r.ttft for r in ok if r.ttft], 50),
            "ttft_p95_s": percentile([r.ttft for r in ok if r.ttft], 95),
            "e2el_p50_s": percentile([r.e2el for r in ok if r.e2el], 50),
            "success_rate": len(ok) / len(part) if part else None,
        }

    first, last = figures(start), figures(end - tenth)
    change = {
        key: last[key] / first[key] - 1 if first[key] and last[key] else None
        for key in first
    }
    return {"first_tenth": first, "last_tenth": last, "change": change}


def recovery(
    results: list[RequestResult], spike_end: float, end: float, slo: Slo
) -> float | None:
    """Seconds after a spike until the TTFT p95 of the requests sent in a
    one-second window is back within the SLO (and stays so); None: never.
    A window in which no request was sent tells nothing either way (a few
    users with long requests leave gaps), so it is passed over."""
    windows = []
    t = spike_end
    while t < end:
        sent = [r for r in results if t <= r.sent_at < t + 1 and r.ok and r.ttft]
        p95 = percentile([r.ttft for r in sent], 95)
        if p95 is not None:
            windows.append((t - spike_end, p95 <= slo.ttft_p95_s))
        t += 1
    for index, (offset, held) in enumerate(windows):
        if held and all(ok for _, ok in windows[index:]):
            return offset
    return None


def by_status(results: Iterable[RequestResult]) -> dict[str, int]:
    counts = Counter(r.error or "200" for r in results)
    return dict(sorted(counts.items()))


def stress_verdict(results: list[RequestResult], duration: float, slo: Slo) -> dict:
    """Graceful degradation: refusals carry Retry-After, nothing times out or
    is cut, and what is answered still counts (goodput)."""
    refused = [r for r in results if r.error in ("429", "503")]
    return {
        "statuses": by_status(results),
        "refused": len(refused),
        "refused_with_retry_after": sum(r.retry_after is not None for r in refused),
        "retried": sum(r.attempt > 1 for r in results),
        "ungraceful": sum(
            r.error in UNGRACEFUL or (r.error or "").endswith("Error") for r in results
        ),
        "goodput": goodput(results, duration, slo),
    }
