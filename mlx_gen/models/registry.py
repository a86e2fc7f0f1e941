"""Named models: the shipped `models.toml`, extended by the user's registry file.

An entry says where a model comes from (a synthetic preset, a hub repository or
a local directory) and how to run it by default: context length, reasoning
effort and sampling. User entries add names or override fields of shipped ones.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlx_gen.errors import RegistryError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SYNTHETIC_PREFIX = "synthetic:"
SourceKind = Literal["synthetic", "hub", "path"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PATH_PREFIXES = ("/", "./", "../", "~")


def is_hub_id(text: str) -> bool:
    """`owner/name`, and not a path that happens to have one slash."""
    return not text.startswith(_PATH_PREFIXES) and bool(_HUB_ID.match(text))


def source_kind(source: str) -> SourceKind:
    """Which of the three kinds of source `source` is; ValueError if none."""
    if source.startswith(SYNTHETIC_PREFIX) and len(source) > len(SYNTHETIC_PREFIX):
        return "synthetic"
    if source.startswith(_PATH_PREFIXES):
        return "path"
    if is_hub_id(source):
        return "hub"
    raise ValueError(
        "source must be synthetic:PRESET, a hub repository id (owner/name) "
        "or a directory path starting with /, ./, ../ or ~"
    )


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)  # 0: no top-k cut
    min_p: float = Field(default=0.0, ge=0, le=1)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    quantization: str
    context_length: int = Field(ge=16)
    reasoning_effort: Literal["low", "medium", "high"] = "medium"
    # Analysis tokens a constrained answer may spend before it must answer.
    max_reasoning_tokens: int | None = Field(default=None, ge=0)
    sampling: Sampling = Sampling()
    description: str = ""

    @field_validator("source")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        source_kind(value)
        return value

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.source)

    @property
    def synthetic_preset(self) -> str:
        return self.source.removeprefix(SYNTHETIC_PREFIX)

    @property
    def local_path(self) -> Path:
        return Path(self.source).expanduser()


def shipped_registry_text() -> str:
    return resources.files("mlx_gen.models").joinpath("models.toml").read_text("utf-8")


def load_registry(user_file: Path | None = None) -> dict[str, ModelEntry]:
    """Shipped entries, then the user's: names in file order, user fields winning."""
    shipped = "shipped models.toml"
    tables = _models_table(_parse(shipped_registry_text(), shipped), shipped)
    origin = {name: shipped for name in tables}
    if user_file is not None:
        user_file = user_file.expanduser()
        if not user_file.is_file():
            raise RegistryError(f"registry file not found: {user_file}")
        where = f"registry file {user_file}"
        user = _models_table(_parse(user_file.read_text("utf-8"), where), where)
        for name, table in user.items():
            table = _resolve_relative_source(table, user_file.parent)
            tables[name] = _merge(tables.get(name, {}), table)
            origin[name] = where
    return {name: _entry(name, table, origin[name]) for name, table in tables.items()}


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{where}: invalid TOML: {exc}") from None


def _models_table(document: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(document) - {"models"})
    if unknown:
        raise RegistryError(
            f"{where}: unknown top-level key {unknown[0]!r}"
            " (entries go under [models.NAME])"
        )
    models = document.get("models", {})
    for name, table in models.items():
        if not isinstance(table, dict):
            raise RegistryError(f"{where}: models.{name} must be a table")
    return {name: dict(table) for name, table in models.items()}


def _resolve_relative_source(table: dict[str, Any], base: Path) -> dict[str, Any]:
    # A relative path in a user file means relative to that file, not to the cwd.
    source = table.get("source")
    if isinstance(source, str) and source.startswith(("./", "../")):
        return {**table, "source": str((base / source).resolve())}
    return table


def _merge(shipped: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    merged = {**shipped, **user}
    if isinstance(shipped.get("sampling"), dict) and isinstance(
        user.get("sampling"), dict
    ):
        merged["sampling"] = {**shipped["sampling"], **user["sampling"]}
    return merged


def _entry(name: str, table: dict[str, Any], where: str) -> ModelEntry:
    try:
        return ModelEntry.model_validate({**table, "name": name})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise RegistryError(f"{where}: models.{name}.{field}: {message}") from None
