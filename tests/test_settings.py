"""Settings precedence: flag > environment > .env > config file > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlx_gen.errors import SettingsError
from mlx_gen.settings import load_settings


@pytest.fixture(autouse=True)
def clean_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no MLX_GEN_* variables from this machine."""
    for name in list(os.environ):
        if name.startswith("MLX_GEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path: Path, **values: object) -> Path:
    lines = [
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
        for k, v in values.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_defaults_without_any_source():
    settings = load_settings()
    assert (settings.port, settings.model, settings.max_queue) == (8000, "demo", 512)


def test_each_source_overrides_the_ones_below(
    clean_place: Path, monkeypatch: pytest.MonkeyPatch
):
    write_config(clean_place / "mlx-gen.toml", port=1001, model="bench", max_queue=7)
    (clean_place / ".env").write_text("MLX_GEN_PORT=1002\nMLX_GEN_MODEL=tiny\n")
    monkeypatch.setenv("MLX_GEN_PORT", "1003")

    settings = load_settings({"port": 1004, "model": None})

    assert settings.port == 1004  # flag beats environment
    assert settings.model == "tiny"  # .env beats config file; None flag is no flag
    assert settings.max_queue == 7  # config file beats default

    assert load_settings().port == 1003  # environment beats .env
    monkeypatch.delenv("MLX_GEN_PORT")
    assert load_settings().port == 1002  # .env beats config file
    (clean_place / ".env").unlink()
    assert load_settings().port == 1001  # config file beats default


def test_config_file_named_by_flag_or_environment(
    clean_place: Path, monkeypatch: pytest.MonkeyPatch
):
    write_config(clean_place / "mlx-gen.toml", port=1001)
    other = write_config(clean_place / "other.toml", port=2002)
    env_named = write_config(clean_place / "env.toml", port=3003)

    assert load_settings(config_file=other).port == 2002
    monkeypatch.setenv("MLX_GEN_CONFIG", str(env_named))
    assert load_settings().port == 3003
    # The flag's file is used for one load only.
    assert load_settings(config_file=other).port == 2002
    assert load_settings().port == 3003


def test_lists_from_config_and_environment(
    clean_place: Path, monkeypatch: pytest.MonkeyPatch
):
    write_config(clean_place / "mlx-gen.toml", api_keys=["k1", "k2"])
    assert load_settings().api_keys == ["k1", "k2"]
    monkeypatch.setenv("MLX_GEN_API_KEYS", '["k3"]')
    assert load_settings().api_keys == ["k3"]


def single_line(exc: pytest.ExceptionInfo[SettingsError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_bad_environment_value_names_the_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLX_GEN_PORT", "eighty")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "'port'" in single_line(exc)


def test_out_of_range_flag_names_the_setting():
    with pytest.raises(SettingsError) as exc:
        load_settings({"max_batch_size": 0})
    assert "'max_batch_size'" in single_line(exc)


def test_speculative_method_is_checked_and_reaches_the_engine():
    with pytest.raises(SettingsError) as exc:
        load_settings({"speculative": "magic"})
    assert "'speculative'" in single_line(exc)
    from mlx_gen.engine.config import EngineConfig

    settings = load_settings({"speculative": "draft:/models/small"})
    config = EngineConfig.from_settings(settings)
    assert config.speculative == "draft:/models/small"
    assert config.num_speculative_tokens == 4


def test_bad_config_file_value_names_the_setting(clean_place: Path):
    write_config(clean_place / "mlx-gen.toml", log_level="loud")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "'log_level'" in single_line(exc)


def test_unknown_setting_in_config_file_is_refused(clean_place: Path):
    write_config(clean_place / "mlx-gen.toml", prot=8080)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "prot" in single_line(exc)


def test_missing_or_malformed_config_file(clean_place: Path):
    with pytest.raises(SettingsError) as exc:
        load_settings(config_file=clean_place / "absent.toml")
    assert "absent.toml" in single_line(exc)

    broken = clean_place / "broken.toml"
    broken.write_text("port = = 3\n")
    with pytest.raises(SettingsError) as exc:
        load_settings(config_file=broken)
    single_line(exc)
