"""`mlx-gen eval kl SRC CONVERTED`: the table, the JSON, the options and
one-line errors, on the tiny model and its 8-bit conversion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_run import run_cli

from cli.helpers import one_line_error, run_main
from mlx_gen.models.conversion import convert
from mlx_gen.models.quant_recipes import make_recipe
from mlx_gen.models.synthetic.presets import write_tokenizer


@pytest.fixture(scope="module")
def eight_bit(tiny_model_path: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "tiny-8bit"
    return convert(str(tiny_model_path), out, make_recipe(bits=8)).out_dir


def test_json_of_a_conversion_end_to_end(tmp_path, eight_bit):
    done = run_cli(tmp_path, "eval", "kl", "tiny", str(eight_bit), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "tiny" and report["converted"] == str(eight_bit)
    assert report["text"] == "built-in"
    # The bundled text: over 2,560 tokens of the tiny vocabulary in 6 chunks.
    assert (report["chunks"], report["chunk"]) == (6, 512)
    assert report["tokens_scored"] > 5 * 511
    assert report["top_k"] == report["vocab_size"] == 1024
    assert 0 < report["kl_mean"] < 0.01
    assert 0 < report["kl_p99"] <= report["kl_max"]
    assert 0.9 < report["top1_agreement"] < 1
    ratio = report["converted_perplexity"] / report["source_perplexity"]
    assert ratio != 1 and ratio == pytest.approx(1, abs=0.01)


def test_table_of_a_model_against_itself(capsys, tiny_model_path):
    code, out, _ = run_main(capsys, "eval", "kl", "tiny", str(tiny_model_path))
    assert code == 0
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if line.count("│") == 3
    }
    assert rows["KL divergence (source ‖ converted)"] == "mean 0, p99 0, max 0"
    assert rows["top-1 agreement"] == "100.0%"
    assert rows["perplexity"].endswith("(+0.00%)")
    assert rows["source record"] == "1,024 of 1,024 log-probs per position (exact)"


def test_text_tokens_chunk_and_top_k(capsys, tmp_path, eight_bit):
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 40)
    code, out, _ = run_main(
        capsys, "eval", "kl", "tiny", str(eight_bit), "--json", "--text", str(text),
        "--tokens", "250", "--chunk", "100", "--top-k", "32",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["text"] == str(text)
    # 250 tokens in chunks of 100, 100 and 50: each chunk's first is context.
    assert (report["chunks"], report["tokens_scored"]) == (3, 247)
    assert report["top_k"] == 32
    assert 0 < report["source_tail_mass"] < 1


def test_table_says_when_the_record_is_a_lower_bound(capsys, eight_bit):
    argv = ("eval", "kl", "tiny", str(eight_bit), "--top-k", "64", "--tokens", "100")
    code, out, _ = run_main(capsys, *argv)
    assert code == 0
    text = " ".join(out.replace("│", " ").split())
    assert "64 of 1,024 log-probs per position;" in text
    assert "outside them (the KL is a lower bound)" in text


def _other_tokenizer(tiny_model_path: Path, tmp_path: Path) -> Path:
    other = tmp_path / "other-tokenizer"
    shutil.copytree(tiny_model_path, other)
    write_tokenizer(other, 1024, seed=1)
    return other


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tiny}", "--text", "{tmp}/missing.txt"], "cannot read {tmp}/missing.txt"),
        (["{tiny}", "--text", "{tmp}/binary"], "cannot read {tmp}/binary: not UTF-8"),
        (["{other}"], "the two models have different tokenizers"),
        (["{tiny}", "--chunk", "1"], "a chunk must hold at least 2 tokens, not 1"),
        (["{tmp}/nowhere"], "model directory not found: {tmp}/nowhere"),
    ],
)
def test_errors_are_one_line(args, message, capsys, tmp_path, tiny_model_path):
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00text")
    names = {"tmp": tmp_path, "tiny": tiny_model_path}
    if "{other}" in args:
        names["other"] = _other_tokenizer(tiny_model_path, tmp_path)
    argv = [a.format(**names) for a in args]
    code, _, err = run_main(capsys, "eval", "kl", "tiny", *argv)
    line = one_line_error(code, err, 1)
    assert line.startswith(f"error: {message.format(**names)}"), line


def test_counts_must_be_positive(capsys, tiny_model_path):
    with pytest.raises(SystemExit) as exit_info:
        run_main(capsys, "eval", "kl", "tiny", str(tiny_model_path), "--tokens", "0")
    assert exit_info.value.code == 2
    assert "give a number of at least 1: '0'" in capsys.readouterr().err
