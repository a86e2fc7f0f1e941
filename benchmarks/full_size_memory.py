"""Memory of the full-size gpt-oss-20b shape (synthetic MXFP4-Q8) on this machine.

    python benchmarks/full_size_memory.py --dir /root/gpt-oss-20b-synthetic

Builds the model into --dir (unless it is already there), then loads it with
`mlx_lm.load`, casts the floating parameters to float32 as the CPU loader does,
and generates a few tokens. Build and load each run in a child process of their
own, so each peak RSS is that phase's alone. Prints one JSON object; --delete
removes the 12 GB directory afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1 << 30


def build(out_dir: Path, seed: int) -> dict[str, Any]:
    from mlx_gen.models.synthetic.presets import build_model

    start = time.perf_counter()
    build_model("gpt-oss-20b", out_dir, seed)
    seconds = time.perf_counter() - start
    files = [p for p in out_dir.iterdir() if p.is_file()]
    return {
        "build_seconds": round(seconds, 1),
        "build_peak_rss_gib": round(_peak_rss_bytes() / GIB, 2),
        "disk_bytes": sum(p.stat().st_size for p in files),
        "safetensors_files": len([p for p in files if p.suffix == ".safetensors"]),
    }


def load(model_dir: Path, prompt: str, tokens: int) -> dict[str, Any]:
    import mlx.core as mx
    import mlx_lm

    from mlx_gen.models.loading import cast_for_backend

    start = time.perf_counter()
    model, tokenizer = mlx_lm.load(str(model_dir))
    cast_for_backend(model)  # float32 on the CPU backend, as the service does
    mx.eval(model.parameters())
    result: dict[str, Any] = {
        "load_seconds": round(time.perf_counter() - start, 1),
        "after_load_active_gib": round(mx.get_active_memory() / GIB, 2),
        "after_load_peak_gib": round(mx.get_peak_memory() / GIB, 2),
        "after_load_rss_gib": round(_current_rss_bytes() / GIB, 2),
    }
    mx.reset_peak_memory()
    stamps = [time.perf_counter()]
    responses = []
    for response in mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=tokens):
        stamps.append(time.perf_counter())
        responses.append(response)
    step_times = [b - a for a, b in itertools.pairwise(stamps)]
    result.update(
        {
            "prompt_tokens": responses[-1].prompt_tokens,
            "generated_tokens": responses[-1].generation_tokens,
            # The first step includes the prompt's prefill.
            "first_token_seconds": round(step_times[0], 2),
            "seconds_per_token": round(sum(step_times[1:]) / (len(step_times) - 1), 2),
            "after_generate_active_gib": round(mx.get_active_memory() / GIB, 2),
            "generate_peak_gib": round(mx.get_peak_memory() / GIB, 2),
            "load_process_peak_rss_gib": round(_peak_rss_bytes() / GIB, 2),
        }
    )
    return result


def machine() -> dict[str, Any]:
    import mlx.core as mx
    import mlx_lm

    cpu = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kib / (1 << 20), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "mlx_lm": mlx_lm.__version__,
    }


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _current_rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--prompt", default="The quick brown fox jumps over")
    parser.add_argument("--delete", action="store_true")
    parser.add_argument("--phase", choices=["build", "load"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "build":
        print(json.dumps(build(args.dir, args.seed)))
        return
    if args.phase == "load":
        print(json.dumps(load(args.dir, args.prompt, args.tokens)))
        return
    report: dict[str, Any] = {"machine": machine()}
    if not (args.dir / "config.json").is_file():
        report.update(_child("--dir", str(args.dir), "--phase", "build"))
    report.update(
        _child(
            *("--dir", str(args.dir), "--phase", "load"),
            *("--tokens", str(args.tokens), "--prompt", args.prompt),
        )
    )
    if args.delete:
        shutil.rmtree(args.dir)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
