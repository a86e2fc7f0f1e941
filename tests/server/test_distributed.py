"""`mlx-gen serve --distributed`: two ranks of the tiny model on loopback
(ring backend, CPU), against one process serving the same model.

Greedy answers must be the same tokens, alone and concurrent. A rank that is
killed or stopped must turn rank 0's readiness to 503 in bounded time, end
the requests in flight, and leave rank 0 able to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlx.utils import tree_flatten
from openai import AsyncOpenAI
from polling import answers, wait_until
from ranks import MLX_LAUNCH, free_ports

from mlx_gen.units import GB, KB, MB

SERVE = [sys.executable, "-m", "mlx_gen", "serve", "--port", "0"]


class Proc:
    """A child process in its own session; its output is kept as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, text=True, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def printed(self, pattern: str, timeout: float) -> re.Match:
        """The first match of `pattern` in the output, waited for: a reader
        thread collects it a moment after the process wrote it."""

        def found() -> re.Match | None:
            match = re.search(pattern, self.output)
            if match is None and self.popen.poll() is not None:
                pytest.fail(
                    f"exited before printing {pattern!r}:\n{self.output[-3000:]}"
                )
            return match

        match = wait_until(found, timeout, interval=0.1)
        if match is None:
            pytest.fail(
                f"{pattern!r} not printed in {timeout} s:\n{self.output[-3000:]}"
            )
        return match

    def url(self, timeout: float) -> str:
        port = self.printed(r"http://127\.0\.0\.1:(\d+)/v1", timeout).group(1)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Everything this process started goes too (mlx.launch's ranks)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
            os.killpg(self.popen.pid, signal.SIGCONT)  # a stopped rank too
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)
        self._reader.join(5)
        self.popen.stdout.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLX_GEN_", "MLX_RANK", "MLX_HOSTFILE"))
        and k != "LD_PRELOAD"
    }
    env |= {
        "MLX_GEN_CACHE_DIR": str(tmp_path / "cache"),
        "MLX_GEN_USE_OPENBLAS": "0",
        "MLX_GEN_MEMORY_BUDGET_GB": "2",
        "MLX_GEN_PREFIX_CACHE_GB": "0.25",
        "COLUMNS": "160",
    }
    return env | extra


def _wait_ready(base: str, procs: list[Proc], timeout: float = 45) -> None:
    def ready() -> bool:
        if any(p.popen.poll() is not None for p in procs):
            pytest.fail("exited:\n" + "\n".join(p.output[-2000:] for p in procs))
        return answers(f"{base}/ready")

    if not wait_until(ready, timeout, interval=0.1):
        pytest.fail("not ready:\n" + "\n".join(p.output[-2000:] for p in procs))


PROMPTS = [
    "The quick brown fox",
    "Once upon a time, in a land far away,",
    "1 2 3 4 5 6 7 8",
    "hello",
    "A much longer prompt, so that its prefill takes several chunks of work "
    "and the batch it joins is already decoding the others. " * 3,
    "zz",
]


async def _answers(base: str, model: str) -> dict[str, object]:
    client = AsyncOpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
    async with client:

        async def complete(prompt: str, max_tokens: int) -> tuple:
            r = await client.completions.create(
                model=model, prompt=prompt, max_tokens=max_tokens, temperature=0
            )
            c, usage = r.choices[0], r.usage
            cached = usage.prompt_tokens_details.cached_tokens
            return c.text, c.finish_reason, usage.completion_tokens, cached

        async def chat(text: str) -> tuple:
            r = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": text}],
                max_tokens=16,
                temperature=0,
            )
            m, usage = r.choices[0].message, r.usage
            cached = usage.prompt_tokens_details.cached_tokens
            return m.content, getattr(m, "reasoning_content", None), cached

        async def stream(prompt: str) -> str:
            chunks = await client.completions.create(
                model=model, prompt=prompt, max_tokens=24, temperature=0, stream=True
            )
            return "".join([c.choices[0].text async for c in chunks if c.choices])

        # The second reuses the first's prompt from the prefix cache; the
        # chats share the harmony system message.
        longer = PROMPTS[4] + "And then?"
        alone = [await complete(p, 20) for p in (PROMPTS[1], PROMPTS[4], longer)]
        alone.append(await chat("Say hi"))
        together = await asyncio.gather(
            *(complete(p, 8 + 4 * i) for i, p in enumerate(PROMPTS)),
            chat("What is MLX?"),
            stream(PROMPTS[1]),
        )
        return {"alone": alone, "together": list(together)}


@contextlib.contextmanager
def _one_process_and_two_ranks(
    tmp_path: Path, model: Path, *rank_flags: str
) -> Iterator[tuple[Proc, str, str]]:
    """`mlx-gen serve` of `model` as one process, and over two ranks with
    `rank_flags` added; yields (the ranks, the one's URL, the ranks' URL),
    both ready, and stops both."""
    ring = free_ports(2)
    launch = [str(MLX_LAUNCH), "--backend", "ring", "-n", "2",
              "--starting-port", str(ring), "--",
              *SERVE, "--model", str(model), "--distributed", *rank_flags]  # fmt: skip
    single = Proc([*SERVE, "--model", str(model)], _env(tmp_path), tmp_path)
    ranks = Proc(launch, _env(tmp_path), tmp_path)
    try:
        one, two = single.url(60), ranks.url(60)
        _wait_ready(one, [single])
        _wait_ready(two, [ranks])
        yield ranks, one, two
    finally:
        ranks.stop()
        single.stop()


def test_two_ranks_answer_as_one_process(tmp_path, tiny_model_path, tiny_model):
    with _one_process_and_two_ranks(tmp_path, tiny_model_path) as (ranks, one, two):
        name = tiny_model_path.name
        expected = asyncio.run(_answers(one, name))
        got = asyncio.run(_answers(two, name))
        # SIGTERM to rank 0 alone: it drains, then lets rank 1 go.
        pid = ranks.printed(r"Started server process \[(\d+)\]", 10).group(1)
        os.kill(int(pid), signal.SIGTERM)
        assert ranks.popen.wait(20) == 0
    assert got == expected
    assert all(answer[0] for answer in expected["together"])  # text came out
    # Prefix cache hits on every rank: the longer prompt reused the long one,
    # and PROMPTS[1] its own first run.
    assert got["alone"][2][-1] >= 40 and got["together"][1][-1] > 0
    assert "tensor parallel over 2 ranks" in ranks.output
    # Rank 1 holds a share, and never held the whole model while loading it.
    held, peak = (_bytes(size) for size in re.search(
        r"rank 1 of 2: \S+ loaded, ([\d.]+ \w+) held \(([\d.]+ \w+) at peak\)",
        ranks.output,
    ).groups())  # fmt: skip
    whole = sum(v.nbytes for _, v in tree_flatten(tiny_model[0].parameters()))
    assert held < whole
    assert peak < (held + whole) / 2
    assert "rank 0 shut down" in ranks.output


def _direct_ranks(tmp_path: Path, model: Path, **env: str) -> tuple[Proc, Proc]:
    """Two ranks started as `mlx.launch` would, without it: the launcher
    itself stops every rank as soon as one dies, and here rank 0 must live on."""
    ring = free_ports(2)
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{ring}"], [f"127.0.0.1:{ring + 1}"]]))
    command = [*SERVE, "--model", str(model), "--distributed"]
    return tuple(
        Proc(
            command,
            _env(tmp_path, MLX_RANK=str(rank), MLX_HOSTFILE=str(hostfile), **env),
            tmp_path,
        )
        for rank in (0, 1)
    )


def _stream_until(base: str, model: str, frames: list[str], started: threading.Event):
    eos = httpx.post(
        f"{base}/tokenize", json={"model": model, "prompt": "<|return|><|call|>"}
    ).json()["tokens"]
    body = {"model": model, "prompt": "x", "max_tokens": 4000, "stream": True,
            "logit_bias": {str(i): -100 for i in eos}}  # fmt: skip
    with httpx.stream("POST", f"{base}/v1/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            frames.append(line)
            started.set()


def _status_within(base: str, path: str, status: int, seconds: float) -> float:
    start = time.monotonic()
    if not wait_until(lambda: answers(f"{base}{path}", status), seconds, 0.1):
        pytest.fail(f"{path} did not answer {status} within {seconds} s")
    return time.monotonic() - start


def test_a_killed_rank_turns_ready_to_503(tmp_path, tiny_model_path):
    """Killed while rank 0 is idle: its next heartbeat finds the closed socket.
    (Killed in the middle of a step, MLX 0.32's ring backend may crash rank 0
    instead: see mlx_gen/engine/distributed/leader.py.)"""
    rank0, rank1 = _direct_ranks(tmp_path, tiny_model_path)
    try:
        base = rank0.url(60)
        _wait_ready(base, [rank0, rank1])
        os.kill(rank1.popen.pid, signal.SIGKILL)
        assert _status_within(base, "/ready", 503, 10) < 10
        ready = httpx.get(f"{base}/ready", timeout=2).json()["error"]
        assert ready["code"] == "engine_dead"
        assert "connection to a peer was lost" in ready["message"]
        health = httpx.get(f"{base}/health", timeout=2)  # the process still answers
        assert health.json()["error"]["code"] == "engine_dead"
        refused = httpx.post(
            f"{base}/v1/completions",
            json={"model": tiny_model_path.name, "prompt": "hi", "max_tokens": 4},
            timeout=5,
        )
        assert refused.status_code == 503
        assert rank0.printed("distributed: an operation failed", 10)
        rank0.popen.send_signal(signal.SIGTERM)
        assert rank0.popen.wait(15) == 0
    finally:
        rank1.stop()
        rank0.stop()


def test_a_stuck_rank_trips_the_watchdog(tmp_path, tiny_model_path):
    """Stopped mid-stream: no socket closes, the collective would wait forever;
    the watchdog ends the engine, the stream in flight ends with an error,
    and rank 0 still shuts down while rank 1 is stuck."""
    rank0, rank1 = _direct_ranks(
        tmp_path, tiny_model_path, MLX_GEN_DISTRIBUTED_STEP_TIMEOUT="2"
    )
    try:
        base = rank0.url(60)
        _wait_ready(base, [rank0, rank1])
        frames: list[str] = []
        started = threading.Event()
        reader = threading.Thread(
            target=_stream_until, args=(base, tiny_model_path.name, frames, started)
        )
        reader.start()
        assert started.wait(20)
        os.kill(rank1.popen.pid, signal.SIGSTOP)
        assert _status_within(base, "/ready", 503, 10) < 10
        reader.join(10)
        assert not reader.is_alive()  # the stream in flight ended...
        data = [f for f in frames if f.startswith("data: ")]
        assert data[-1] == "data: [DONE]"
        assert '"error"' in data[-2]  # ...with an error event
        message = httpx.get(f"{base}/ready", timeout=2).json()["error"]["message"]
        assert "waited" in message and "timeout 2 s" in message
        assert rank0.printed("distributed: an operation has waited", 10)
        rank0.popen.send_signal(signal.SIGTERM)
        assert rank0.popen.wait(15) == 0
    finally:
        rank1.stop()
        rank0.stop()


def _bytes(size: str) -> float:
    """ "1.23 MB" (as mlx-gen's logs write sizes) -> 1230000.0"""
    value, unit = size.split()
    return float(value) * {"B": 1, "kB": KB, "MB": MB, "GB": GB}[unit]


def test_two_ranks_speculating_answer_as_one_plain_process(tmp_path, tiny_model_path):
    """`--speculative ngram` over two ranks: verification and rollback run on
    both, and greedy answers are those of one process that does not speculate."""
    flags = ("--speculative", "ngram")
    with _one_process_and_two_ranks(tmp_path, tiny_model_path, *flags) as running:
        _, one, two = running
        name = tiny_model_path.name
        expected = asyncio.run(_answers(one, name))
        got = asyncio.run(_answers(two, name))
        metrics = httpx.get(f"{two}/metrics").text
    assert got == expected
    accepted = re.search(
        r"^mlx_gen_speculative_accepted_tokens_total (\S+)", metrics, re.M
    )
    assert accepted and float(accepted.group(1)) > 0
