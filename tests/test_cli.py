"""The `mlx-gen` command: sub-commands, setting flags, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from cli_run import MLX_GEN, cli_env, run_cli

from mlx_gen.cli import build_parser, main, settings_overrides
from mlx_gen.settings import load_settings

SHIPPED = ["demo", "tiny", "bench", "gpt-oss-20b-synthetic", "gpt-oss-20b"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture(autouse=True)
def clean_place(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No MLX_GEN_* settings from this machine; an empty working directory."""
    for name in list(os.environ):
        if name.startswith("MLX_GEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLX_GEN_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_demo_offline_in_a_child_process(tmp_path: Path):
    result = run_cli(
        tmp_path,
        "generate",
        "--model",
        "demo",
        "--prompt",
        "hello",
        "--max-tokens",
        "16",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "decode " in result.stderr
    assert "tok/s" in result.stderr
    assert "peak memory" in result.stderr
    # Built from nothing into the cache it was given: no download.
    built = list((tmp_path / "cache" / "synthetic").glob("tiny-*/model.safetensors"))
    assert len(built) == 1


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_same_seed_same_text(capsys: pytest.CaptureFixture[str]):
    args = ("generate", "--prompt", "hello", "--max-tokens", "12", "--seed", "7")
    first = run_main(capsys, *args)
    second = run_main(capsys, *args)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]


def test_models_table(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_main(capsys, "models")
    assert code == 0
    assert "Models (default: demo)" in out
    for name in SHIPPED:
        assert any(line.split()[0] == name for line in rows(out))
    hub_row = row(out, "gpt-oss-20b-4bit")
    assert hub_row.split()[1:] == [
        "mlx-community/gpt-oss-20b-4bit",
        "4bit",
        "128K",
        "no",
    ]


def test_models_table_keeps_sources_readable_in_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_main(capsys, "models")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    for name in SHIPPED:
        # A long source folds onto the next line, never shrinks to nothing.
        assert len(row(out, name).split()[1]) >= 20 or name in ("demo", "tiny", "bench")
    assert row(out, "bench").split()[1] == "synthetic:bench"


def rows(table: str) -> list[str]:
    """The table's rows (a folded cell continues on lines starting with spaces)."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("───")) + 1
    return [line for line in lines[start:] if line and not line.startswith(" ")]


def row(table: str, name: str) -> str:
    return next(line for line in rows(table) if line.split()[0] == name)


def test_models_shows_a_local_directory_and_its_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model_path: Path
):
    registry = tmp_path / "models.toml"
    registry.write_text(
        f'[models.house]\nsource = "{tiny_model_path}"\nquantization = "float32"\n'
        'context_length = 2048\n\n[models.lost]\nsource = "./lost"\n'
        'quantization = "4bit"\ncontext_length = 2048\n'
    )
    code, out, _ = run_main(capsys, "models", "--registry-file", str(registry))
    assert code == 0
    house = row(out, "house")
    assert "yes," in house
    assert "MB" in house or "kB" in house
    assert row(out, "lost").split()[-1] == "missing"


def test_models_shows_whether_a_synthetic_model_is_built(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MLX_GEN_CACHE_DIR", str(tmp_path))
    before = row(run_main(capsys, "models")[1], "tiny")
    assert before.split()[-1] == "no"
    assert run_main(capsys, "generate", "--prompt", "hi", "--max-tokens", "2")[0] == 0
    after = row(run_main(capsys, "models")[1], "tiny")
    assert "yes," in after
    assert "MB" in after


def test_flags_left_out_do_not_override(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    args = build_parser().parse_args(["serve", "--port", "9001"])
    assert settings_overrides(args) == {"port": "9001"}

    monkeypatch.setenv("MLX_GEN_MODEL", "tiny")
    assert "Models (default: tiny)" in run_main(capsys, "models")[1]
    assert (
        "Models (default: bench)" in run_main(capsys, "models", "--model", "bench")[1]
    )


def test_every_setting_is_a_serve_flag():
    argv = (
        "serve --api-key k1 --api-key k2 --host 0.0.0.0 --allow-public-without-auth"
        " --max-batch-size 8 --no-use-openblas"
    )
    args = build_parser().parse_args(argv.split())
    settings = load_settings(settings_overrides(args))
    assert settings.api_keys == ["k1", "k2"]
    assert (settings.host, settings.max_batch_size) == ("0.0.0.0", 8)
    assert settings.allow_public_without_auth is True
    assert settings.use_openblas is False


def test_config_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    config = tmp_path / "elsewhere.toml"
    config.write_text('model = "bench"\n')
    assert "default: bench" in run_main(capsys, "models", "--config", str(config))[1]


def one_line_error(code: int, err: str, expected_code: int) -> str:
    assert code == expected_code
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["serve", "--port", "http"], {}, "'port'"),
        (["serve"], {"MLX_GEN_MAX_QUEUE": "-1"}, "'max_queue'"),
        (["models", "--config", "absent.toml"], {}, "absent.toml"),
    ],
    ids=["flag", "env", "config-file"],
)
def test_bad_setting_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    named: str,
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run_main(capsys, *argv)
    assert named in one_line_error(code, err, 2)


def test_bad_registry_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    registry = tmp_path / "models.toml"
    registry.write_text('[models.x]\nsource = "a/b"\n')
    code, _, err = run_main(capsys, "models", "--registry-file", str(registry))
    assert "models.x.quantization" in one_line_error(code, err, 2)


def test_unknown_model_is_one_line(capsys: pytest.CaptureFixture[str]):
    code, _, err = run_main(capsys, "generate", "--model", "nope", "--prompt", "x")
    line = one_line_error(code, err, 1)
    assert "unknown model 'nope'" in line
    assert "gpt-oss-20b-4bit" in line


def test_render_prints_the_harmony_prompt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    conversation = tmp_path / "chat.json"
    conversation.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hello"}]})
    )
    code, out, _ = run_main(
        capsys, "render", str(conversation), "--reasoning-effort", "high"
    )
    assert code == 0
    assert "Reasoning: high" in out
    assert out.rstrip().endswith(
        "<|start|>user<|message|>hello<|end|><|start|>assistant"
    )


def test_render_of_a_bad_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    conversation = tmp_path / "chat.json"
    conversation.write_text("[not json")
    code, _, err = run_main(capsys, "render", str(conversation))
    assert f"cannot render {conversation}" in one_line_error(code, err, 1)


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run_main(capsys)
    assert code == 2
    for command in ("generate", "models", "serve", "render", "env"):
        assert command in out


def test_ctrl_c_is_one_line_and_no_traceback(tmp_path: Path):
    # A hub that accepts the connection and never answers: the command waits
    # there until interrupted.
    with socket.socket() as silent_hub:
        silent_hub.bind(("127.0.0.1", 0))
        silent_hub.listen()
        endpoint = f"http://127.0.0.1:{silent_hub.getsockname()[1]}"
        env = cli_env(tmp_path, HF_HUB_OFFLINE="0", HF_ENDPOINT=endpoint)
        child = subprocess.Popen(
            [str(MLX_GEN), "generate", "--model", "gpt-oss-20b", "--prompt", "x"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        silent_hub.settimeout(60)
        connection, _ = silent_hub.accept()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        connection.close()
    assert child.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "error: interrupted"
