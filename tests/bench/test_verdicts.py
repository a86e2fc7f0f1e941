"""The sentences and numbers a profile run ends with, from request results
shaped as a real run leaves them."""

from __future__ import annotations

from mlx_gen.bench.analysis import Slo, ramp_verdict, recovery
from mlx_gen.bench.request import RequestResult
from mlx_gen.bench.tables import profile_lines


def _answered(sent_at: float, ttft: float) -> RequestResult:
    return RequestResult(ok=True, sent_at=sent_at, ttft=ttft, e2el=ttft + 1.0)


def test_recovery_passes_over_seconds_in_which_nothing_was_sent():
    # Two users whose requests take about 1.3 s: some one-second windows after
    # the spike get no new request, yet every TTFT is well within the SLO.
    after_spike = [_answered(10.0 + 1.3 * n, 0.08) for n in range(8)]
    assert recovery(after_spike, spike_end=10.0, end=20.0, slo=Slo()) == 0.0


def test_recovery_waits_for_the_last_slow_window():
    slow = [_answered(10.2, 3.0), _answered(11.5, 2.5)]
    fast = [_answered(13.1, 0.1), _answered(15.4, 0.1), _answered(17.0, 0.2)]
    assert recovery(slow + fast, spike_end=10.0, end=18.0, slo=Slo()) == 3.0
    assert recovery(slow, spike_end=10.0, end=18.0, slo=Slo()) is None


def _level(users: int, tok_s: float, ttft_p95: float) -> dict:
    return {"concurrency": users, "success_rate": 1.0, "output_tok_s": tok_s,
            "ttft_s": {"p95": ttft_p95}, "itl_s": {"p95": 0.05}}  # fmt: skip


def _ramp_line(levels: list[dict]) -> str:
    verdict = ramp_verdict(levels, Slo())
    (line,) = profile_lines({"name": "ramp", "verdicts": {"default": verdict}})
    return line


def test_ramp_line_says_when_the_slo_held_at_every_step():
    line = _ramp_line([_level(1, 40.0, 0.3), _level(2, 70.0, 0.4)])
    assert line.endswith("capacity 2 users (last level within the SLO), knee 2"
                         " users; SLO held at every step")  # fmt: skip
    line = _ramp_line([_level(1, 40.0, 0.3), _level(2, 41.0, 2.5)])
    assert line.endswith("knee 1 users; SLO broken at 2 users by: TTFT p95 2500 ms")
