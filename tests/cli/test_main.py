"""The `mlx-gen` command: setting flags, help, and one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest
from cli_run import MLX_GEN, cli_env

from cli.helpers import one_line_error, run_main
from mlx_gen.cli.main import build_parser, settings_overrides
from mlx_gen.settings import load_settings


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
