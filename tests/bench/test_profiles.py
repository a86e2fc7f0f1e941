"""`mlx-gen bench serve --profile ramp|spike|soak|stress` against real
`mlx-gen serve` children on the tiny model: one throttled on purpose (one
sequence at a time, one waiting), one rate-limited, and the HTML report."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from child_server import ChildServer
from cli_run import MLX_GEN, cli_env, run_cli

SHORT = ("--max-tokens", "8", "--prompt-tokens", "16", "--warmup", "0")
# Judge the throttle's refusals only: latency limits a loaded CI machine could
# break on its own would make the capacity depend on the machine's speed.
REFUSALS_ONLY = ("--slo-success", "0.8", "--slo-ttft-p95", "60000",
                 "--slo-itl-p95", "60000")  # fmt: skip


def _serve(tmp_path_factory, name: str, *limits: str) -> Iterator[ChildServer]:
    home = tmp_path_factory.mktemp(name)
    command = [str(MLX_GEN), "serve", "--model", "tiny", *limits]
    with ChildServer(command, home, cli_env(home)) as server:
        yield server


@pytest.fixture(scope="module")
def throttled(tmp_path_factory) -> Iterator[ChildServer]:
    """Holds two requests: one decoding, one queued; a third gets 503."""
    yield from _serve(tmp_path_factory, "throttled", "--max-batch-size", "1",
                      "--max-queue", "1")  # fmt: skip


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory) -> Iterator[ChildServer]:
    """30 requests at once, then one per 2 s (429, Retry-After: 2)."""
    yield from _serve(tmp_path_factory, "limited", "--rate-limit-rpm", "30",
                      "--max-batch-size", "2", "--max-queue", "1")  # fmt: skip


def _bench(tmp_path: Path, url: str, *args: str) -> tuple[dict, str]:
    out = tmp_path / "run.json"
    done = run_cli(tmp_path, "bench", "serve", url, *SHORT, "--output", str(out),
                   *args)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stdout


def test_ramp_finds_the_capacity_a_throttle_implies(throttled, tmp_path):
    html = tmp_path / "ramp.html"
    report, stdout = _bench(tmp_path, throttled.base, "--profile", "ramp",
                            "--concurrency", "1,2,3,4", "--duration", "1.5",
                            "--reasoning-effort", "low", "--report", str(html),
                            "--server-pid", str(throttled.pid),
                            *REFUSALS_ONLY)  # fmt: skip
    # The ramp stops at the first level that breaks the SLO: 3 users.
    assert [lvl["concurrency"] for lvl in report["levels"]] == [1, 2, 3]
    verdict = report["profile"]["verdicts"]["low"]
    assert verdict["capacity"] == 2 and verdict["broken_at"] == 3
    assert verdict["broken_by"][0].startswith("success")
    assert report["levels"][2]["statuses"].get("503", 0) > 0
    # A user's next request can reach the server a moment before the slot of
    # its last one is freed: a rare 503 at two users, well within the SLO.
    assert report["levels"][1]["success_rate"] >= 0.8
    assert "capacity 2 users" in stdout
    # The server's own metrics and process, sampled every second.
    resources = report["resources"]
    assert len(resources) >= 3
    assert all(s["kv_tokens_budget"] > 0 and s["rss_bytes"] > 0 for s in resources)
    assert max(s["running"] for s in resources) <= 1  # its batch of one
    assert {"output_tok_s", "goodput_tok_s", "ttft_p95_s"} <= set(report["series"][0])
    # One file that opens offline: plotly inlined, nothing fetched, a plot a section.
    page = html.read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?https?:", page)
    assert page.count("<h2>") == 6 == page.count('class="plotly-graph-div"')
    assert "capacity 2" in page


def test_spike_reports_recovery_and_what_failed(throttled, tmp_path):
    report, stdout = _bench(tmp_path, throttled.base, "--profile", "spike",
                            "--concurrency", "1,4", "--duration", "1.5",
                            "--settle", "1.5", *REFUSALS_ONLY)  # fmt: skip
    phases = [lvl["phase"] for lvl in report["levels"]]
    assert phases == ["before", "spike", "after"]
    verdict = report["profile"]["verdicts"]["default"]
    # Four users against room for two: refused during the spike only.
    assert verdict["spike_statuses"].get("503", 0) > 0
    assert report["levels"][0]["statuses"].keys() == {"200"}
    assert verdict["recovery_s"] is not None and verdict["recovery_s"] <= 1.5
    assert verdict["spike_end_s"] - verdict["spike_start_s"] == pytest.approx(1.5)
    assert "recovery after the spike" in stdout


def test_soak_reports_drift_between_first_and_last_tenth(throttled, tmp_path):
    report, _ = _bench(tmp_path, throttled.base, "--profile", "soak",
                       "--concurrency", "1", "--duration", "3")  # fmt: skip
    verdict = report["profile"]["verdicts"]["default"]
    assert verdict["first_tenth"]["output_tok_s"] > 0
    assert report["levels"][0]["success_rate"] == 1.0
    # None when no request began in the last tenth (a busy machine's slow one).
    assert verdict["last_tenth"]["success_rate"] in (1.0, None)
    assert set(verdict["change"]) == set(verdict["first_tenth"])
    assert len(report["series"]) >= 3


def test_stress_is_refused_gracefully_and_retry_after_is_honoured(
    rate_limited, tmp_path
):
    report, _ = _bench(tmp_path, rate_limited.base, "--profile", "stress",
                       "--concurrency", "4", "--duration", "5")  # fmt: skip
    verdict = report["profile"]["verdicts"]["default"]
    assert verdict["refused"] > 0 and verdict["ungraceful"] == 0
    assert verdict["refused_with_retry_after"] == verdict["refused"]
    assert verdict["retried"] > 0 and verdict["goodput"]["requests_per_s"] > 0
    samples = report["levels"][0]["samples"]
    by_user: dict[int, list[dict]] = {}
    for sample in sorted(samples, key=lambda s: s["sent_at"]):
        by_user.setdefault(sample["user"], []).append(sample)
    waits = 0
    for sent in by_user.values():
        for before, after in itertools.pairwise(sent):
            if before["retry_after"] is not None:  # the next one waited as asked
                assert after["sent_at"] - before["done_at"] >= before["retry_after"]
                waits += 1
    assert waits >= verdict["retried"]


def test_targets_gate_the_exit_code(throttled, tmp_path):
    """`--targets` fails a run whose targets are not met: here, the success
    target at 100+ users against a server that holds two."""
    out = tmp_path / "t.json"
    done = run_cli(tmp_path, "bench", "serve", throttled.base, *SHORT,
                   "--concurrency", "100", "--num-requests", "100",
                   "--targets", "--output", str(out))  # fmt: skip
    success = json.loads(out.read_text())["targets"][1]
    assert success["met"] is False and success["measured"] < 0.95
    assert done.returncode == 1, done.stderr


def test_compare_report_overlays_two_runs(throttled, tmp_path):
    files = []
    for label in ("a", "b"):
        run_dir = tmp_path / label
        run_dir.mkdir()
        _report, _ = _bench(run_dir, throttled.base, "--label", label,
                           "--num-requests", "3")  # fmt: skip
        files.append(run_dir / "run.json")
    html = tmp_path / "cmp.html"
    done = run_cli(tmp_path, "bench", "compare", *map(str, files), "--report",
                   str(html))  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = html.read_text()
    assert page.count('class="plotly-graph-div"') == 4
    assert '"name":"a: TTFT p50"' in page and '"name":"b: TTFT p50"' in page


def test_workload_of_real_prompts_whole_and_streamed_on_completions(
    throttled, tmp_path
):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '"a text prompt"\n{"prompt": "another"}\n'
        '{"messages": [{"role": "user", "content": "a chat"}]}\n'
    )
    for endpoint in ("completions", "chat"):
        report, _ = _bench(tmp_path, throttled.base, "--prompts", str(prompts),
                           "--endpoint", endpoint, "--stream-fraction", "0.5",
                           "--max-tokens", "4:8", "--num-requests", "12")  # fmt: skip
        level = report["levels"][0]
        assert level["success_rate"] == 1.0
        samples = level["samples"]
        streamed = [s for s in samples if s["stream"]]
        whole = [s for s in samples if not s["stream"]]
        assert streamed and whole and level["streamed"] == len(streamed)
        assert all(s["ttft"] is None and s["e2el"] > 0 for s in whole)
        # A stream whose few tokens decode to no text has no first token.
        assert all(s["ttft"] > 0 for s in streamed if s["text_chunks"])
        assert any(s["text_chunks"] for s in streamed)
        assert all(0 < s["output_tokens"] <= 8 for s in samples)
        assert len({s["prompt_tokens"] for s in samples}) > 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--prompt-tokens", "9:3"), "LOW <= HIGH"),
        (("--reasoning-effort", "extreme"), "low,medium,high"),
        (("--profile", "spike", "--concurrency", "4,2"), "PEAK must be above BASE"),
        (("--profile", "soak", "--rate", "2"), "--rate is for sweeps"),
        (("--duration", "5"), "--duration needs --profile"),
        (("--prompts", "missing.jsonl"), "no such file"),
    ],
)
def test_bad_flags_are_one_clear_line(tmp_path, flags, message):
    done = run_cli(tmp_path, "bench", "serve", "http://127.0.0.1:9", *flags)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_prompt_file_names_its_line(throttled, tmp_path):
    prompts = tmp_path / "bad.jsonl"
    prompts.write_text('"fine"\n{"messages": "no"}\n')
    done = run_cli(tmp_path, "bench", "serve", throttled.base, "--prompts",
                   str(prompts))  # fmt: skip
    assert done.returncode == 1 and f"{prompts}:2: each line must be" in done.stderr


def test_grafana_dashboard_queries_metrics_the_server_exposes(throttled):
    import httpx

    dashboard = Path(__file__).parents[2] / "deploy" / "grafana-mlx-gen.json"
    queries = [t["expr"] for p in json.loads(dashboard.read_text())["panels"]
               for t in p["targets"]]  # fmt: skip
    used = {name for q in queries for name in re.findall(r"mlx_gen_\w+", q)}
    exposed = httpx.get(throttled.url("/metrics"), trust_env=False).text
    names = set(re.findall(r"^(mlx_gen_\w+)", exposed, re.MULTILINE))
    assert len(used) >= 12 and used <= names, used - names
