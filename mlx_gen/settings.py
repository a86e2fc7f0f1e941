"""One `Settings` object for every command.

Precedence, highest first: command-line flags, `MLX_GEN_*` environment,
`.env` in the working directory, the TOML config file (`--config`, or
`MLX_GEN_CONFIG`, or `./mlx-gen.toml`), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mlx_gen.errors import SettingsError

DEFAULT_CONFIG_FILE = Path("mlx-gen.toml")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlx-gen"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MLX_GEN_",
        env_file=".env",
        extra="forbid",
        validate_default=True,
    )

    # What to serve.
    model: str = "demo"
    registry_file: Path | None = None
    cache_dir: Path = Field(default_factory=default_cache_dir)

    # Where to listen.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    allow_public_without_auth: bool = False
    cors_origins: list[str] = Field(default_factory=list)

    # Who may call, and how much.
    api_keys: list[str] = Field(default_factory=list)
    api_key_file: Path | None = None
    auth_exempt_paths: list[str] = Field(
        default_factory=lambda: ["/health", "/ready", "/metrics"]
    )
    rate_limit_rpm: int | None = Field(default=None, ge=1)
    rate_limit_tpm: int | None = Field(default=None, ge=1)

    # Request bounds.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_messages: int = Field(default=2048, ge=1)
    # Stored Responses (per API key, least recently used evicted first).
    responses_store_size: int = Field(default=1024, ge=0)
    responses_store_max_age: float = Field(default=3600.0, gt=0)
    max_tokens_default: int = Field(default=2048, ge=1)

    # Engine.
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    max_queue: int = Field(default=512, ge=0)
    prefill_step_size: int = Field(default=512, ge=16)
    memory_budget_gb: float | None = Field(default=None, gt=0)
    memory_headroom_gb: float = Field(default=1.0, ge=0)
    prefix_cache_gb: float = Field(default=1.0, ge=0)
    max_context: int | None = Field(default=None, ge=16)
    speculative: str | None = Field(
        default=None, pattern=r"^(ngram|draft:.+|eagle3:.+)$"
    )
    num_speculative_tokens: int = Field(default=4, ge=1, le=16)
    speculative_max_batch: int = Field(default=4, ge=1, le=1024)

    # Tensor parallel over the ranks `mlx.launch` starts (mlx_gen.engine.distributed).
    distributed: bool = False
    distributed_step_timeout: float = Field(default=30.0, gt=0)

    # Process.
    use_openblas: bool = True
    drain_timeout: float = Field(default=30.0, ge=0)
    sse_keepalive_seconds: float = Field(default=10.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("MLX_GEN_CONFIG_FILE_OVERRIDE") or os.environ.get(
            "MLX_GEN_CONFIG", str(DEFAULT_CONFIG_FILE)
        )
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)),
        )

    def all_api_keys(self) -> list[str]:
        """Keys from settings plus those in `api_key_file`, one per line."""
        keys = [k for k in self.api_keys if k]
        if self.api_key_file is not None:
            text = self.api_key_file.read_text(encoding="utf-8")
            keys += [line.strip() for line in text.splitlines() if line.strip()]
        return keys


def load_settings(
    overrides: dict[str, Any] | None = None, config_file: Path | None = None
) -> Settings:
    """Build the settings; flags that were not given must be left out of `overrides`."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"config file not found: {config_file}")
        os.environ["MLX_GEN_CONFIG_FILE_OVERRIDE"] = str(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        raise SettingsError(
            f"invalid setting {name!r} (MLX_GEN_{name.upper()}): {err['msg']}"
        ) from None
    except ValueError as exc:  # a malformed TOML file or environment value
        raise SettingsError(f"invalid settings: {exc}") from None
    finally:
        os.environ.pop("MLX_GEN_CONFIG_FILE_OVERRIDE", None)
