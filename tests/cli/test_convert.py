"""`mlx-gen convert SRC OUT`: the report, the proof the result loads and
generates as the engine would serve it, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_run import run_cli

from cli.helpers import run_main
from mlx_gen.cli.main import main
from mlx_gen.units import format_bytes


def test_command_reports_and_proves_the_result(hf_checkpoint, tmp_path):
    out = tmp_path / "gpt-oss-mlx"
    done = run_cli(
        tmp_path, "convert", str(hf_checkpoint), str(out), "--recipe", "mxfp4-q8"
    )
    assert done.returncode == 0, done.stderr
    report = " ".join(done.stdout.split())
    for label in ("bits per weight", "size on disk", "engine plan", "generated"):
        assert label in report
    assert "6× mxfp4 g32" in report and "12× 8-bit affine g64" in report
    # The engine's plan, measured as served here (CPU: float32): 1 full-attention
    # layer grows by 2 (K, V) × 2 heads × 16 dims × 4 bytes = 256 B a token, the
    # sliding one holds its 32-token window: 8.19 KB.
    assert "256 B per token (1 layers) + 8.19 kB per sequence" in report
    assert "(8 tokens," in report
    again = run_cli(tmp_path, "convert", str(hf_checkpoint), str(out))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {out} already exists: pass --force to replace it"
    ]


def test_check_reports_what_the_recipe_cost(hf_checkpoint, tmp_path, capsys):
    costs = {}
    for bits in ("8", "4"):
        out = tmp_path / f"{bits}-bit"
        argv = ["convert", str(hf_checkpoint), str(out), "--bits", bits, "--check"]
        code, report, _ = run_main(capsys, *argv, "--verify-tokens", "0")
        assert code == 0
        rows = {
            line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in report.splitlines()
            if line.count("│") == 3
        }
        # What it saves next to what it costs: the weights against the source's.
        weights, share = rows["weights"].split(": ")
        source_bytes = (hf_checkpoint / "model.safetensors").stat().st_size
        assert share.endswith(f" of the source's {format_bytes(source_bytes)}")
        assert float(weights.split()[0]) * 1e3 / source_bytes == pytest.approx(
            float(share.split("%")[0]) / 100, abs=0.006
        )
        assert rows["source record"] == "1,024 of 1,024 log-probs per position (exact)"
        assert rows["tokens scored"] == "3,024 in 6 chunks of up to 512"
        mean = rows["KL divergence (source ‖ converted)"].split(",")[0]
        agreement = float(rows["top-1 agreement"].rstrip("%"))
        costs[bits] = (float(mean.removeprefix("mean ")), agreement, share)
    assert 0 < costs["8"][0] < costs["4"][0], costs
    assert costs["8"][1] > costs["4"][1], costs
    assert int(costs["8"][2].split("%")[0]) > int(costs["4"][2].split("%")[0])


def _unsupported(hf_checkpoint: Path, tmp_path: Path) -> str:
    source = tmp_path / "llama-like"
    shutil.copytree(hf_checkpoint, source)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "nope"}))
    return str(source)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "error: source not found: {tmp}/missing"),
        (["{unsupported}"], "error: unsupported architecture 'nope'"),
        (["{hf}", "--recipe", "mxfp4-q8", "--bits", "4"], "error: --recipe mxfp4-q8"),
        (["{hf}", "--mode", "mxfp4", "--bits", "8"], "error: --mode mxfp4 means 4"),
        (["nobody/nothing"], "error: nobody/nothing is not in the hub cache"),
        (["{hf}"], "error: cannot write {tmp}/a-file/out: "),
    ],
)
def test_errors_are_one_line(
    args, message, hf_checkpoint, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    names = {"tmp": tmp_path, "hf": hf_checkpoint}
    if "{unsupported}" in args:
        names["unsupported"] = _unsupported(hf_checkpoint, tmp_path)
    argv = [a.format(**names) for a in args]
    (tmp_path / "a-file").write_text("")
    out = tmp_path / ("a-file/out" if "a-file" in message else "out")
    code = main(["convert", argv[0], str(out), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0, err
    assert err.startswith(message.format(**names))
    assert not (tmp_path / "out").exists()
