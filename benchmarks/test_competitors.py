"""Against the server users would otherwise pick: `python -m mlx_lm.server`
on the same model directory, both servers running side by side on 127.0.0.1
with OpenBLAS, loaded in turn (round by round, order alternating) by the same
load generator with 64-token streams. vllm-mlx is not installed here."""

from __future__ import annotations

import pytest
from http_runs import check_level, level_row, prepare, run_http_level
from servers import mlx_lm_server
from timing import paired_ratios, run_rounds, spread

PROMPT_TOKENS = 192
MAX_TOKENS = 64
REQUESTS = {1: 8, 8: 32, 32: 64}
SEED = 3000


@pytest.fixture(scope="module")
def loads(mlx_gen_server, bench_model_path, server_env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mlx-lm-server")
    with mlx_lm_server(bench_model_path, workdir, server_env) as other:
        yield {
            "mlx-gen": prepare(mlx_gen_server, PROMPT_TOKENS, MAX_TOKENS),
            "mlx_lm.server": prepare(other, PROMPT_TOKENS, MAX_TOKENS),
        }


@pytest.mark.parametrize("clients", [1, 8, 32])
def test_vs_mlx_lm_server(benchmark, loads, rounds, record, clients):
    requests = REQUESTS[clients]

    def level(config):
        return lambda r: run_http_level(config, clients, requests, seed=SEED + r)

    systems = {name: level(config) for name, config in loads.items()}
    # Both servers are warm (prepare): every round is measured.
    got = run_rounds(benchmark, systems, rounds, cold=tuple(systems))
    rates = {k: [s["output_tok_s"] for s in v] for k, v in got.items()}
    ttft = {k: [s["ttft_s"]["p50"] for s in v] for k, v in got.items()}
    record(
        clients=clients,
        requests=requests,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        rounds=rounds,
        mlx_gen_output_tok_s=spread(rates["mlx-gen"]),
        mlx_lm_server_output_tok_s=spread(rates["mlx_lm.server"]),
        ratio=spread(paired_ratios(rates["mlx-gen"], rates["mlx_lm.server"])),
        mlx_gen_ttft_p50_s=spread(ttft["mlx-gen"]),
        mlx_lm_server_ttft_p50_s=spread(ttft["mlx_lm.server"]),
        mlx_lm_server_failed=sum(s["failed"] for s in got["mlx_lm.server"]),
        levels=[
            {"server": name, **level_row(s)} for name, runs in got.items() for s in runs
        ],
    )
    for summary in got["mlx-gen"]:
        check_level(summary, MAX_TOKENS)
