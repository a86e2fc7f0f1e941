"""What an EAGLE-3 head costs on the bench model, against one decode step
of the model: drafting k tokens (one head step each, the first through
`fc`, as eagle3.py proposes), and reading the model's states of 32 decoded
positions into the head's cache (what a row pays every 32 tokens, drafting
or not). The head is a random one in the published layout
(mlx_gen/models/synthetic/eagle3.py), as large as a real head would be for
this model.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 \\
        python benchmarks/eagle3_cost.py --repeats 15

A 128-token context for the model and the head; medians in milliseconds,
the measurements interleaved after a warm-up round; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx_lm
from mlx_lm.models.cache import KVCache, make_prompt_cache

from mlx_gen.engine.speculation.draft import fork_layer
from mlx_gen.engine.speculation.eagle3 import load_eagle3
from mlx_gen.models.synthetic.eagle3 import build_eagle3_head
from mlx_gen.models.synthetic.presets import ensure_model

CONTEXT, CATCH_UP = 128, 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--draft-vocab", type=int, default=2048)
    args = parser.parse_args()
    target = ensure_model("bench")
    model = mlx_lm.load(str(target))[0]
    with tempfile.TemporaryDirectory() as tmp:
        head_dir = build_eagle3_head(
            target, Path(tmp), draft_vocab_size=args.draft_vocab
        )
        proposer = load_eagle3(head_dir, model)
    head, embed = proposer.head, proposer._embed
    tokens = mx.arange(CONTEXT, dtype=mx.uint32) * 37 % 8000
    cache = make_prompt_cache(model)
    model(tokens[None], cache=cache)
    states = proposer._fused()  # (1, CONTEXT, 3 x hidden), tapped
    head_cache = KVCache()
    head.step(embed(tokens[1:])[None], states[:, :-1], head_cache)
    mx.eval([layer.state for layer in cache], head_cache.state)

    def decode() -> None:
        mx.eval(model(tokens[None, :1], cache=cache))
        for layer in cache:
            layer.trim(1)

    def draft(k: int) -> None:
        fork, token, hidden, drafted = fork_layer(head_cache), tokens[:1], states, []
        hidden = hidden[:, -1:]
        for _ in range(k):
            hidden = head.step(embed(token)[None], hidden, fork)
            token = proposer._d2t[mx.argmax(head.logits(hidden[:, -1]), axis=-1)]
            drafted.append(token)
        mx.eval(drafted)

    def catch_up() -> None:
        fork = fork_layer(head_cache)
        head.step(embed(tokens[:CATCH_UP])[None], states[:, :CATCH_UP], fork)
        mx.eval(fork.state)

    cases = {
        "decode step ms": decode,
        **{f"draft {k} ms": (lambda k=k: draft(k)) for k in (1, 2, 4)},
        f"head reads {CATCH_UP} positions ms": catch_up,
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for repeat in range(args.repeats + 1):  # the first round warms up
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            if repeat:
                times[name].append(time.perf_counter() - start)
    medians = {n: round(statistics.median(t) * 1000, 2) for n, t in times.items()}
    print(json.dumps({"head weights MB": proposer.weights_bytes / 1e6, **medians}))


if __name__ == "__main__":
    main()
