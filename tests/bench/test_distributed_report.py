"""`mlx-gen bench engine --distributed` under `mlx.launch`: two ranks of the
tiny model on loopback (ring backend, CPU); rank 0 reports every rank."""

from __future__ import annotations

import json
import subprocess

from cli_run import MLX_GEN, cli_env, run_cli
from ranks import MLX_LAUNCH, free_ports


def test_two_ranks_report_speed_and_memory_per_rank(tmp_path, tiny_model):
    from mlx.utils import tree_flatten

    whole = sum(v.nbytes for _, v in tree_flatten(tiny_model[0].parameters()))
    out = tmp_path / "dist.json"
    done = subprocess.run(
        [str(MLX_LAUNCH), "--backend", "ring", "-n", "2",
         "--starting-port", str(free_ports(2)), "--",
         str(MLX_GEN), "bench", "engine", "--model", "tiny", "--distributed",
         "--prompt-tokens", "12", "--batch", "1,3", "--max-tokens", "5",
         "--output", str(out)],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [p["engine"]["completion_tokens"] for p in report["points"]] == [5, 15]
    assert all(p["engine"]["decode_tps"] > 0 for p in report["points"])
    shared = report["distributed"]
    assert shared["ranks"] == 2
    ranks = shared["per_rank"]
    assert [r["rank"] for r in ranks] == [0, 1]
    # Equal shares: the sharded layers split evenly, the rest is replicated.
    assert ranks[0]["weights_bytes"] == ranks[1]["weights_bytes"] > 0
    assert report["model"]["weights_bytes"] == ranks[0]["weights_bytes"]  # a share
    assert ranks[1]["weights_bytes"] < whole  # a share, not the whole model
    assert all(r["peak_bytes"] >= r["weights_bytes"] for r in ranks)
    assert "Tensor parallel over 2 ranks" in done.stdout


def test_raw_is_refused_with_distributed(tmp_path):
    done = run_cli(
        tmp_path, "bench", "engine", "--model", "tiny", "--distributed", "--raw"
    )
    assert done.returncode == 1
    assert "not with --distributed" in done.stderr
