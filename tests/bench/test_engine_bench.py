"""`mlx-gen bench engine` on the tiny model: every JSON field, sane numbers."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from cli_run import run_cli

from mlx_gen.bench.engine_bench import Measurement, Point, Stream, TokenClock

PROMPTS = (16, 40)
BATCHES = (1, 3)
MAX_TOKENS = 6


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("bench-engine")
    out = home / "engine.json"
    result = run_cli(
        home,
        "bench",
        "engine",
        "--model",
        "tiny",
        "--prompt-tokens",
        ",".join(map(str, PROMPTS)),
        "--batch",
        ",".join(map(str, BATCHES)),
        "--max-tokens",
        str(MAX_TOKENS),
        "--raw",
        "--output",
        str(out),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    data["stdout"] = result.stdout
    return data


def test_every_point_measured_through_engine_and_raw(report):
    points = report["points"]
    assert [(p["prompt_tokens"], p["batch"]) for p in points] == [
        (p, b) for p in PROMPTS for b in BATCHES
    ]
    names = {f.name for f in fields(Measurement)}
    for point in points:
        assert point["max_tokens"] == MAX_TOKENS
        for side in ("engine", "raw"):
            m = point[side]
            assert set(m) == names
            # No stop token: every request generated exactly max_tokens.
            assert m["completion_tokens"] == point["batch"] * MAX_TOKENS
            assert m["prefill_tps"] > 0
            assert m["decode_tps"] > 0
            assert m["decode_tps_per_stream"] > 0
            if point["batch"] == 1:  # one stream: both say the same
                assert m["decode_tps"] == pytest.approx(m["decode_tps_per_stream"])
            assert m["output_tps"] > 0
            assert 0 < m["ttft_p50"] <= m["ttft_max"] <= m["seconds"]
            assert m["peak_memory_bytes"] > 0
            assert m["cached_tokens"] == 0  # distinct prompts: no prefix hits
        # At most one token per stream and pass without speculation (the
        # pass launched while a stream's last token is read is spent).
        assert 0.8 < point["engine"]["tokens_per_step"] <= 1.0
        assert point["raw"]["tokens_per_step"] is None
        assert point["plain"] is None
        assert point["decode_ratio_engine_to_raw"] > 0
        assert point["speed_ratio_engine_to_raw"] == pytest.approx(
            point["raw"]["seconds"] / point["engine"]["seconds"]
        )


def test_the_report_says_model_hardware_settings_and_targets(report):
    assert report["model"]["name"] == "tiny"
    assert report["model"]["weights_bytes"] > 0
    peaks = [p["engine"]["peak_memory_bytes"] for p in report["points"]]
    assert report["process_max_rss_bytes"] > max(peaks)  # Python and MLX together
    hw = report["hardware"]
    for key in ("accelerator", "metal", "cpu", "cpu_cores", "memory_bytes", "blas"):
        assert hw[key] not in (None, "")
    assert report["settings"]["prompt_tokens"] == list(PROMPTS)
    assert report["settings"]["batch"] == list(BATCHES)
    targets = report["targets"]
    # A 1 MB model on this CPU is not what the targets are about.
    assert targets["apply"] is False
    assert [r["metric"] for r in targets["rows"]] == [
        "single-stream decode",
        "TTFT (idle, p50)",
        "peak memory",
    ]
    assert all(r["measured"] > 0 and r["met"] in (True, False) for r in targets["rows"])
    decode = targets["rows"][0]
    first = report["points"][0]["engine"]  # batch 1 at the shortest prompt
    assert decode["measured"] == first["decode_tps_per_stream"]
    out = report["stdout"]
    assert "Targets" in out and "150 tok/s" in out and "16 GB" in out
    assert "Measured on:" in out and hw["accelerator"] in out


def test_the_figures_follow_their_definitions():
    # Two streams of 3 tokens: 1.0 s to 3.0 s and 2.0 s to 4.0 s.
    clock = TokenClock(
        start=0.0, streams={"a": Stream(1.0, 3.0, 3), "b": Stream(2.0, 4.0, 3)}
    )
    m = clock.measure(Point(prompt_tokens=10, batch=2, max_tokens=3))
    assert m.completion_tokens == 6
    assert (m.ttft_p50, m.ttft_max, m.seconds) == (1.5, 2.0, 4.0)
    assert m.prefill_tps == pytest.approx(20 / 2.0)  # until the last first token
    assert m.decode_tps == pytest.approx(4 / 3.0)  # 2 + 2 tokens, 1.0 s to 4.0 s
    assert m.decode_tps_per_stream == pytest.approx(1.0)  # 2 tokens in 2 s each
    assert m.output_tps == pytest.approx(6 / 4.0)


def test_max_tokens_below_two_is_refused(tmp_path: Path):
    result = run_cli(
        tmp_path, "bench", "engine", "--model", "tiny", "--max-tokens", "1"
    )
    assert result.returncode == 1
    assert "--max-tokens must be at least 2" in result.stderr


def test_with_speculation_each_point_runs_with_and_without(tmp_path: Path):
    out = tmp_path / "engine.json"
    result = run_cli(
        tmp_path, "bench", "engine", "--model", "tiny", "--prompt-tokens", "24",
        "--batch", "1,2", "--max-tokens", "100", "--temperature", "0",
        "--speculative", "ngram", "--output", str(out), timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["speculative"] == "ngram"
    for point in report["points"]:
        fast, plain = point["engine"], point["plain"]
        # Greedy on a random model: cycles, so proposals are kept.
        assert fast["tokens_per_step"] > 1.1 and 0 < fast["acceptance"] <= 1
        assert 0.9 < plain["tokens_per_step"] <= 1.0
        assert plain["acceptance"] is None
        assert point["speculation_decode_speed_up"] == pytest.approx(
            fast["decode_tps"] / plain["decode_tps"]
        )
    assert "decode speed-up" in result.stdout
