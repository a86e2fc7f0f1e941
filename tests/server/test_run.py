"""`mlx-gen serve`: exposure checks, start-up panel, SIGTERM drain (a real process)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from polling import answers, wait_until
from rich.console import Console

from mlx_gen.cli.main import build_parser
from mlx_gen.server.run import check_exposure, panel
from mlx_gen.settings import Settings

from .helpers import settings_for


def test_public_bind_needs_keys_or_explicit_consent():
    assert check_exposure(settings_for(host="127.0.0.1"), 0) is None
    assert "refusing" in check_exposure(settings_for(host="0.0.0.0"), 0)
    assert check_exposure(settings_for(host="0.0.0.0"), 1) is None
    consent = settings_for(host="0.0.0.0", allow_public_without_auth=True)
    assert check_exposure(consent, 0) is None


def render(settings, served, n_keys: int) -> str:
    console = Console(record=True, width=120, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(panel(settings, served, "http://127.0.0.1:8000", n_keys))
    console.file.close()
    return console.export_text()


def test_panel_says_where_memory_and_auth(served):
    text = render(settings_for(rate_limit_rpm=60), served, 2)
    assert "http://127.0.0.1:8000/v1" in text
    assert "Memory plan" in text and "KV cache" in text and " GB" in text
    assert "on: 2 API keys" in text
    assert "60 requests/min" in text
    assert "off: no API key (loopback only)" in render(settings_for(), served, 0)


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_GEN_")}
    env |= {
        "MLX_GEN_CACHE_DIR": str(tmp_path / "cache"),
        "MLX_GEN_USE_OPENBLAS": "false",
        "MLX_GEN_DRAIN_TIMEOUT": "30",
        "COLUMNS": "160",
    }
    return env


def test_refuses_a_public_address_without_keys(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlx_gen", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in done.stderr


def test_the_refusal_names_flags_and_variables_that_exist():
    message = check_exposure(settings_for(host="0.0.0.0"), 0)
    flags = re.findall(r"--[a-z][a-z-]+", message)
    assert set(flags) >= {"--api-key", "--allow-public-without-auth", "--host"}
    serve_flags = build_parser()._subparsers._group_actions[0].choices["serve"]
    known = {flag for action in serve_flags._actions for flag in action.option_strings}
    assert set(flags) <= known
    for variable in re.findall(r"MLX_GEN_([A-Z_]+)", message):
        assert variable.lower() in Settings.model_fields


def _drain(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def test_serve_demo_then_drain_on_sigterm(tmp_path):
    command = [
        sys.executable,
        "-m",
        "mlx_gen",
        "serve",
        "--model",
        "demo",
        "--port",
        "0",
    ]
    with subprocess.Popen(
        command, cwd=tmp_path, env=cli_env(tmp_path), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as proc:  # fmt: skip
        out: queue.Queue[str] = queue.Queue()
        err: queue.Queue[str] = queue.Queue()
        drains = [
            threading.Thread(target=_drain, args=(stream, lines), daemon=True)
            for stream, lines in ((proc.stdout, out), (proc.stderr, err))
        ]
        for drain in drains:
            drain.start()
        try:
            frames, at_signal = _stream_through_sigterm(proc, out, err)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        for drain in drains:
            drain.join(10)
    assert proc.returncode == 0, "".join(err.queue)[-3000:]
    data = [f for f in frames if f.startswith("data: ")]
    assert len(frames) > at_signal + 100  # most of the stream came after SIGTERM
    assert data[-1] == "data: [DONE]"  # and it finished
    assert json.loads(data[-2][6:])["choices"][0]["finish_reason"] == "length"
    logged = [json.loads(line) for line in err.queue if line.startswith("{")]
    completion = [r for r in logged if r["path"] == "/v1/completions"]
    assert completion and completion[0]["status"] == 200
    assert completion[0]["completion_tokens"] == 1500


def refuses_connections(url: str) -> bool:
    """Whether a new request to `url` goes unserved: refused, or reset when
    it reached the accept queue just before the listener closed."""
    try:
        httpx.get(url, timeout=5)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


def _stream_through_sigterm(
    proc: subprocess.Popen, out: queue.Queue, err: queue.Queue
) -> tuple[list[str], int]:
    """Wait for the panel and readiness, start a long stream, SIGTERM mid-way."""

    def running() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {''.join(err.queue)[-3000:]}")
        return True

    shown: list[str] = []

    def panel_shown() -> bool:
        with contextlib.suppress(queue.Empty):
            while running():
                shown.append(out.get_nowait())
        return "╰" in "".join(shown)

    if not wait_until(panel_shown, 120, interval=0.05):
        pytest.fail(f"no panel: {''.join(err.queue)[-3000:]}")
    panel_text = "".join(shown)
    assert "demo" in panel_text and "Memory plan" in panel_text
    assert "off: no API key (loopback only)" in panel_text
    port = re.search(r"http://127\.0\.0\.1:(\d+)/v1", panel_text).group(1)
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: running() and answers(f"{base}/ready"), 60)
    eos = httpx.post(
        f"{base}/tokenize", json={"model": "demo", "prompt": "<|return|><|call|>"}
    ).json()["tokens"]
    body = {"model": "demo", "prompt": "x", "max_tokens": 1500, "stream": True,
            "logit_bias": {str(i): -100 for i in eos}}  # fmt: skip
    frames: list[str] = []
    started = threading.Event()

    def read() -> None:
        with httpx.stream("POST", f"{base}/v1/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                frames.append(line)
                started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(30)
    proc.send_signal(signal.SIGTERM)
    at_signal = len(frames)
    # The listener closes a moment after the signal; then no new connections
    # while the stream in flight drains.
    assert wait_until(lambda: refuses_connections(f"{base}/health"), 10)
    reader.join(60)
    return frames, at_signal
