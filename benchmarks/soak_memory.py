"""Memory of `mlx-gen serve` under the soak's traffic, sampled over a long run.

    PYTHONPATH=tests python benchmarks/soak_memory.py --out soak-reference.csv
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 \
        PYTHONPATH=tests python benchmarks/soak_memory.py --out soak-openblas.csv
    MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 \
        PYTHONPATH=tests python benchmarks/soak_memory.py --out soak-steady-malloc.csv

Run from the repository root; the server inherits the environment (a preloaded
BLAS, glibc's malloc settings). It starts the server with the soak test's flags
and traffic (tests/reliability/soak_traffic.py) and every --interval seconds
records its RSS and, from /metrics, MLX's active memory, MLX's buffer cache and
the prefix cache (each with its limit) and the KV tokens in use. A last row is
taken once the traffic has stopped and the engine is idle. Writes the samples
as CSV and prints them as a Markdown table, one row a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

from reliability.server_process import MODEL, ServerProcess
from reliability.soak_traffic import SERVER_FLAGS, traffic

from mlx_gen.models.synthetic.presets import ensure_model

MIB = 1 << 20
GAUGES = {
    "mlx_active_mib": "mlx_gen_mlx_active_memory_bytes",
    "mlx_cache_mib": "mlx_gen_mlx_cache_memory_bytes",
    "mlx_cache_limit_mib": "mlx_gen_mlx_cache_limit_bytes",
    "prefix_cache_mib": "mlx_gen_prefix_cache_bytes",
    "prefix_cache_limit_mib": "mlx_gen_prefix_cache_limit_bytes",
}


def blas_of(pid: int) -> str:
    """Which BLAS the server process runs on: Debian's OpenBLAS when preloaded
    (numpy's own OpenBLAS may be mapped too, but MLX does not call it)."""
    maps = Path(f"/proc/{pid}/maps")
    if not maps.exists():
        return "unknown"
    return "OpenBLAS" if "openblas-pthread" in maps.read_text() else "reference"


def sample(server: ServerProcess, elapsed: float, requests: int) -> dict:
    gauges = server.gauges()
    row = {"elapsed_s": round(elapsed), "requests": requests,
           "rss_mib": round(server.rss_bytes() / MIB, 1)}  # fmt: skip
    row |= {key: round(gauges[name] / MIB, 1) for key, name in GAUGES.items()}
    row["kv_tokens_used"] = int(gauges["mlx_gen_kv_tokens_used"])
    return row


async def soak(server: ServerProcess, seconds: float, interval: float) -> list[dict]:
    kinds: Counter = Counter()
    bias = server.no_eos_bias()
    start = time.monotonic()
    load = asyncio.create_task(
        traffic(server.base, 1000, bias, asyncio.sleep(seconds), kinds)
    )
    rows = []
    while not load.done():
        elapsed = time.monotonic() - start
        rows.append(await asyncio.to_thread(sample, server, elapsed, kinds.total()))
        print(rows[-1], flush=True)
        wait = interval - (time.monotonic() - start) % interval
        await asyncio.wait([load], timeout=wait)
    await load
    if not server.engine_idle(30):
        raise RuntimeError(f"the engine did not go idle: {server.gauges()}")
    rows.append(sample(server, time.monotonic() - start, kinds.total()))
    rows[-1]["elapsed_s"] = "idle"
    return rows


def markdown(rows: list[dict], every: float) -> str:
    keep = [r for r in rows[:-1] if r["elapsed_s"] % every < 5] + rows[-1:]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in keep]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("soak_memory.csv"))
    args = parser.parse_args()
    # Killed: stop the server too (the `finally` below), as on Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="soak-memory-") as tmp:
        cache = Path(tmp) / "cache"
        ensure_model(MODEL, cache_dir=cache / "synthetic")
        server = ServerProcess(Path(tmp) / "server", cache, SERVER_FLAGS)
        try:
            server.start()
            print(f"BLAS: {blas_of(server.pid)}; flags: {' '.join(SERVER_FLAGS)}")
            rows = asyncio.run(soak(server, args.seconds, args.interval))
        finally:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(markdown(rows, 60))


if __name__ == "__main__":
    main()
