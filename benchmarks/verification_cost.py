"""What a verification pass costs on the bench model: the forward pass of
1 + k tokens per row against one token, with the MoE rows grouped by expert
(as a verification pass runs them, speculation/experts.py) and not (as
mlx-lm runs fewer than 64 rows).

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 \\
        python benchmarks/verification_cost.py --batch 1 --repeats 15

Each width is timed `repeats` times, widths and the two ways interleaved,
after a round of warm-up, on one cache holding a 100-token prompt (trimmed
back after each pass); prints the median milliseconds per pass as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import mlx.core as mx
import mlx_lm
from mlx_lm.models.cache import make_prompt_cache

from mlx_gen.engine.speculation.experts import grouped_experts
from mlx_gen.models.synthetic.presets import ensure_model

WIDTHS = (1, 2, 3, 5, 9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    model = mlx_lm.load(str(ensure_model("bench")))[0]
    batch = args.batch
    cache = [layer.merge([layer] * batch) for layer in make_prompt_cache(model)]
    model(mx.zeros((batch, 100), dtype=mx.uint32), cache=cache)
    mx.eval([layer.state for layer in cache])
    kinds = ("ungrouped", "grouped")
    times = {(kind, w): [] for kind in kinds for w in WIDTHS}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for width in WIDTHS:
            for kind in kinds:
                tokens = mx.arange(batch * width, dtype=mx.uint32) * 101 % 8000
                start = time.perf_counter()
                with grouped_experts(model) if kind == "grouped" else nullcontext():
                    out = model(tokens.reshape(batch, width), cache=cache)
                mx.eval(out)
                if repeat:
                    times[kind, width].append(time.perf_counter() - start)
                for layer in cache:  # below the window: a plain trim is right
                    layer.trim(width)
    results = {
        kind: {
            f"{w} tokens ms": round(statistics.median(times[kind, w]) * 1000, 1)
            for w in WIDTHS
        }
        for kind in kinds
    }
    print(json.dumps({"batch": batch, **results}, indent=2))


if __name__ == "__main__":
    main()
