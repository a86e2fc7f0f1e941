"""The flags of `mlx-gen bench serve` and their checks (bench_serve.py runs it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlx_gen.bench.workload import Span, parse_span
from mlx_gen.cli.flags import number_list
from mlx_gen.errors import CommandError

# Per profile: default users (ramp: steps; spike: base,peak) and seconds
# (ramp: per step; spike: of the spike; soak, stress: in all).
PROFILE_DEFAULTS = {
    "ramp": ([1, 2, 4, 8, 16, 32, 64, 128], 20.0),
    "spike": ([2, 16], 10.0),
    "soak": ([4], 300.0),
    "stress": ([64], 60.0),
}
EFFORTS = ("low", "medium", "high")


def _span(text: str) -> Span:
    try:
        return parse_span(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _efforts(text: str) -> list[str]:
    efforts = [part.strip() for part in text.split(",") if part.strip()]
    if not efforts or any(e not in EFFORTS for e in efforts):
        raise argparse.ArgumentTypeError(f"give some of {','.join(EFFORTS)}: {text!r}")
    return efforts


def add_arguments(serve: argparse.ArgumentParser) -> None:
    add = serve.add_argument
    add("url", help="the server, e.g. http://127.0.0.1:8000")
    add("--model", help="model id to ask for (default: the first listed)")
    add("--api-key", help="sent as a bearer token")
    add(
        "--profile",
        choices=sorted(PROFILE_DEFAULTS),
        help="ramp, spike, soak or stress (default: a sweep of --concurrency/--rate)",
    )
    add(
        "--concurrency",
        type=number_list(int),
        metavar="N,N",
        help="requests in flight, one level each (default 1; no cap with --rate);"
        " with --profile, users: ramp's steps, spike's BASE,PEAK, or one",
    )
    add(
        "--rate",
        type=number_list(float),
        metavar="R,R",
        help="Poisson arrivals per second, one level each (default: all at once)",
    )
    add("--duration", type=float, metavar="S", help="profile seconds (see docs)")
    add("--settle", type=float, default=10.0, metavar="S", help="spike: base load")
    add("--num-requests", type=int, default=32, metavar="N", help="per level")
    add("--prompt-tokens", type=_span, default="128", metavar="N|LOW:HIGH")
    add("--max-tokens", type=_span, default="128", metavar="N|LOW:HIGH")
    add("--prompts", type=Path, metavar="FILE.jsonl", help="real prompts, one a line")
    add("--stream-fraction", type=float, default=1.0, metavar="F", help="0..1")
    add("--endpoint", choices=("chat", "completions"), default="chat")
    add("--reasoning-effort", type=_efforts, metavar="low,medium,high")
    add("--retries", type=int, metavar="N", help="after Retry-After (stress: 3)")
    add("--slo-success", type=float, default=0.95, metavar="F")
    add("--slo-ttft-p95", type=float, default=2000.0, metavar="MS")
    add("--slo-itl-p95", type=float, default=250.0, metavar="MS")
    add("--metrics-url", help="Prometheus metrics (default: URL/metrics)")
    add("--server-pid", type=int, metavar="PID", help="default: found by port")
    add("--targets", action="store_true", help="exit 1 unless the targets are met")
    add("--warmup", type=int, default=1, metavar="N", help="unmeasured first")
    add("--seed", type=int, default=0, help="of prompts and arrivals")
    add("--timeout", type=float, default=300.0, help="seconds per request")
    add("--max-duration", type=float, default=600.0, help="seconds per level at most")
    add("--label", help="name of this run in comparisons")
    add("--output", type=Path, metavar="FILE", help="write JSON here")
    add("--report", type=Path, metavar="FILE", help="write an HTML report here")


def check(args: argparse.Namespace) -> None:
    """Raises CommandError for a flag out of range; fills profile defaults."""
    for name in ("num_requests", "timeout", "max_duration", "duration"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive")
    for name in ("warmup", "retries", "settle"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise CommandError(f"--{name.replace('_', '-')} must be 0 or more")
    for name in ("stream_fraction", "slo_success"):
        if not 0 <= getattr(args, name) <= 1:
            raise CommandError(f"--{name.replace('_', '-')} must be from 0 to 1")
    if args.prompts is not None and not args.prompts.is_file():
        raise CommandError(f"--prompts: no such file: {args.prompts}")
    if args.profile is None:
        if args.duration is not None:
            raise CommandError("--duration needs --profile")
        args.retries = args.retries or 0
        return
    if args.rate:
        raise CommandError("--rate is for sweeps: profiles run virtual users")
    users, seconds = PROFILE_DEFAULTS[args.profile]
    args.concurrency = args.concurrency or users
    args.duration = args.duration or seconds
    if args.retries is None:
        args.retries = 3 if args.profile == "stress" else 0
    wanted = 2 if args.profile == "spike" else None
    if args.profile in ("soak", "stress"):
        wanted = 1
    if wanted is not None and len(args.concurrency) != wanted:
        raise CommandError(
            f"--profile {args.profile} takes {wanted} --concurrency value(s)"
        )
    if args.profile == "spike" and args.concurrency[1] <= args.concurrency[0]:
        raise CommandError("--profile spike: PEAK must be above BASE")
