"""`mlx-gen bench serve` against real servers on loopback: mlx-gen's own
(`mlx-gen serve`) and mlx-lm's (`python -m mlx_lm.server`), both serving the
tiny synthetic model in child processes; and `mlx-gen bench compare`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from child_server import ChildServer, free_port
from cli_run import MLX_GEN, cli_env, run_cli

from mlx_gen.bench.loadgen import (
    Level,
    LevelRun,
    LoadConfig,
    RequestResult,
    make_client,
    run_level,
)
from mlx_gen.bench.report import percentile, summarize, target_checks

SUMMARY_FIELDS = {
    "level", "concurrency", "rate", "requests", "completed", "failed",
    "success_rate", "failures", "duration_s", "output_tokens",
    "output_tokens_per_request_mean", "prompt_tokens_mean", "usage_reported",
    "output_tok_s", "requests_per_s", "decode_tok_s_per_stream",
    "text_chunks_per_token", "ttft_s", "tpot_s", "itl_s", "e2el_s", "samples",
}  # fmt: skip
SAMPLE_FIELDS = {
    "ok", "sent_at", "error", "detail", "ttft", "e2el", "itl", "output_tokens",
    "text_chunks", "prompt_tokens", "usage_reported", "tpot",
}  # fmt: skip
REPORT_FIELDS = {
    "label", "url", "model", "server", "created", "config", "hardware",
    "hardware_text", "levels", "targets",
}  # fmt: skip


@pytest.fixture(scope="module")
def mlx_gen_server(tmp_path_factory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("mlx-gen-serve")
    command = [str(MLX_GEN), "serve", "--model", "tiny"]
    with ChildServer(command, home, cli_env(home)) as server:
        yield server.base


@pytest.fixture(scope="module")
def mlx_lm_server(tmp_path_factory, tiny_model_path: Path) -> Iterator[str]:
    home = tmp_path_factory.mktemp("mlx-lm-server")
    (home / "hub").mkdir()  # mlx_lm.server lists the hub cache: it must exist
    model = str(tiny_model_path.resolve())
    command = [sys.executable, "-m", "mlx_lm.server", "--model", model]
    with ChildServer(command, home, cli_env(home), "/v1/models") as server:
        yield server.base


def _bench(home: Path, url: str, out: Path, *args: str):
    common = ["--num-requests", "4", "--max-tokens", "8", "--output", str(out)]
    return run_cli(home, "bench", "serve", url, *common, *args)


def _check_report(report: dict, levels: list[str], requests: int) -> None:
    assert set(report) == REPORT_FIELDS
    assert [level["level"] for level in report["levels"]] == levels
    assert report["hardware"]["machine"] and "apple_silicon" in report["hardware"]
    assert "loopback" in report["hardware_text"]
    for level in report["levels"]:
        assert set(level) == SUMMARY_FIELDS
        assert level["completed"] == requests and level["success_rate"] == 1.0
        assert level["usage_reported"] and level["failures"] == {}
        assert level["output_tokens"] == sum(
            s["output_tokens"] for s in level["samples"]
        )
        assert 0 < level["output_tokens"] <= 8 * requests
        for metric in ("ttft_s", "e2el_s"):
            stats = level[metric]
            assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"]
        for sample in level["samples"]:
            assert set(sample) == SAMPLE_FIELDS
            assert 0 < sample["ttft"] <= sample["e2el"]
            assert sum(sample["itl"]) <= sample["e2el"] - sample["ttft"] + 1e-6
    # A small model at a few streams: the targets are shown, judged on nothing.
    for check in report["targets"]:
        assert check["met"] is None and check["why"].startswith("does not apply")
    assert report["targets"][1]["measured"] == 1.0


def test_bench_serve_against_mlx_gen(mlx_gen_server, tmp_path):
    out = tmp_path / "mlx-gen.json"
    done = _bench(tmp_path, mlx_gen_server, out, "--concurrency", "1,2",
                  "--prompt-tokens", "200", "--label", "mlx-gen")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    _check_report(report, ["c=1", "c=2"], 4)
    assert report["model"] == "tiny" and report["server"] == "uvicorn"
    assert report["config"]["prompt_calibrated"]
    # Calibrated on the server's own usage, harmony system prompt included.
    assert 160 <= report["levels"][0]["prompt_tokens_mean"] <= 240
    assert "idle TTFT p50" in done.stdout and "mlx-gen: tiny" in done.stdout


def test_bench_serve_against_mlx_lm_with_poisson_arrivals(mlx_lm_server, tmp_path):
    out = tmp_path / "mlx-lm.json"
    done = _bench(tmp_path, mlx_lm_server + "/v1", out, "--rate", "20",
                  "--concurrency", "2", "--prompt-tokens", "64")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    _check_report(report, ["c=2 rate=20/s"], 4)
    assert report["url"] == mlx_lm_server  # /v1 is the API root, not the server's
    sent = [s["sent_at"] for s in report["levels"][0]["samples"]]
    assert max(sent) > 0.01  # arrivals spread over time, not all at once
    # Idle TTFT needs a concurrency-1 level without a rate: not measured here.
    assert report["targets"][0]["measured"] is None


def test_failures_are_counted_by_status(mlx_gen_server, tmp_path):
    out = tmp_path / "bad.json"
    done = _bench(tmp_path, mlx_gen_server, out, "--model", "no-such-model")
    assert done.returncode == 1  # nothing succeeded
    level = json.loads(out.read_text())["levels"][0]
    assert level["failures"] == {"404": 4} and level["success_rate"] == 0.0
    assert "model_not_found" in level["samples"][0]["detail"]


def test_connection_errors_are_counted_by_kind():
    port = free_port()  # nothing listens there
    config = LoadConfig(f"http://127.0.0.1:{port}", "m", num_requests=3)

    async def go():
        async with make_client(4, 10) as client:
            return await run_level(client, config, Level(2, None))

    run = asyncio.run(go())
    assert [r.error for r in run.results] == ["ConnectError"] * 3


def test_each_level_is_bounded_by_its_deadline(mlx_lm_server):
    config = LoadConfig(
        mlx_lm_server, "m", num_requests=50, max_tokens=64, level_deadline=0.3
    )

    async def go():
        async with make_client(2, 10) as client:
            return await run_level(client, config, Level(1, None))

    start = time.monotonic()
    run = asyncio.run(go())
    assert time.monotonic() - start < 5
    assert len(run.results) == 50
    assert any(r.error == "deadline" for r in run.results)


def test_server_that_cannot_be_reached_is_one_line(tmp_path):
    done = run_cli(tmp_path, "bench", "serve", f"http://127.0.0.1:{free_port()}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert len(lines) == 1 and lines[0].startswith("error: cannot list models at")


def test_compare_lays_runs_side_by_side(mlx_gen_server, mlx_lm_server, tmp_path):
    files = []
    for label, url in (("mlx-gen", mlx_gen_server), ("mlx-lm", mlx_lm_server)):
        files.append(tmp_path / f"{label}.json")
        done = _bench(tmp_path, url, files[-1], "--label", label, "--warmup", "0")
        assert done.returncode == 0, done.stderr
    done = run_cli(tmp_path, "bench", "compare", *map(str, files))
    assert done.returncode == 0, done.stderr
    assert "mlx-gen" in done.stdout and "mlx-lm" in done.stdout
    assert "TTFT p50 ms" in done.stdout and "×)" in done.stdout  # ratios to the first


def test_percentile_matches_numpy():
    values = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None


def _level(results: list[RequestResult]) -> dict:
    return summarize(LevelRun(Level(1, None), 1.0, results))


def test_decode_target_needs_a_token_per_chunk():
    """TPOT = (E2EL − TTFT) / (tokens − 1); from a stream that sends its tokens
    in a few chunks no client can tell the decode speed, and says so."""
    streamed = RequestResult(
        ok=True, sent_at=0, ttft=0.05, e2el=0.05 + 9 * 0.004, itl=[0.004] * 9,
        output_tokens=10, text_chunks=10, usage_reported=True,
    )  # fmt: skip
    assert streamed.tpot == pytest.approx(0.004)
    checks = target_checks([_level([streamed])], "gpt-oss-20b")
    assert checks[0]["measured"] == pytest.approx(0.05) and checks[0]["met"]
    assert checks[2]["measured"] == pytest.approx(250.0) and checks[2]["met"]
    demo = target_checks([_level([streamed])], "demo")
    assert [c["met"] for c in demo] == [None, None, None]
    assert demo[0]["why"] == "does not apply: demo is not GPT-OSS-20B"
    coalesced = RequestResult(
        ok=True, sent_at=0, ttft=0.05, e2el=0.051, output_tokens=10,
        text_chunks=1, usage_reported=True,
    )  # fmt: skip
    decode = target_checks([_level([coalesced])], "gpt-oss-20b")[2]
    assert decode["measured"] is None and "not measurable" in decode["name"]
