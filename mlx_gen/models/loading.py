"""A model name or directory in; an mlx-lm model and tokenizer out.

A name is looked up in the registry; anything else must be a model directory,
served under the directory's name. Synthetic models are built on first use,
hub models come from the hub cache or are downloaded once. Everything that can
go wrong is a `ModelLoadError` whose message is one line a user can act on.

mlx and mlx-lm are imported inside the functions that need them: they take
seconds to import, and `mlx-gen models` needs neither.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlx_gen.errors import ModelLoadError, RegistryError, one_line
from mlx_gen.models.registry import ModelEntry, is_hub_id, load_registry
from mlx_gen.settings import Settings

if TYPE_CHECKING:
    import mlx.nn as nn
    from mlx_lm.tokenizer_utils import TokenizerWrapper

# A safetensors header larger than this is garbage, not a header.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_DEFAULT_CONTEXT = 4096


@dataclass
class LoadedModel:
    name: str
    path: Path
    model: nn.Module
    tokenizer: TokenizerWrapper
    config: dict[str, Any]
    entry: ModelEntry


def load_model(name_or_dir: str, settings: Settings) -> LoadedModel:
    """Resolve, fetch or build, check and load a model."""
    import mlx.core as mx
    from mlx_lm.utils import load_model as mlx_load_model

    name, path, entry = locate(name_or_dir, settings)
    read_config(path)
    check_weights(path)
    try:
        # Lazy, so a bfloat16 checkpoint is cast before it is ever materialized.
        model, config = mlx_load_model(path, lazy=True)
        cast_for_backend(model)
        mx.eval(model.parameters())
        tokenizer = _load_tokenizer(path, config)
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        message = f"cannot load {name} from {path}: {one_line(exc)}"
        raise ModelLoadError(message) from exc
    return LoadedModel(
        name=name,
        path=path,
        model=model,
        tokenizer=tokenizer,
        config=config,
        entry=entry or directory_entry(name, path, config),
    )


def load_tokenizer(name_or_dir: str, settings: Settings) -> TokenizerWrapper:
    """Only the tokenizer of a model: for rendering prompts without the weights."""
    name, path, _ = locate(name_or_dir, settings)
    config = read_config(path)
    try:
        return _load_tokenizer(path, config)
    except (ValueError, OSError, KeyError) as exc:
        message = f"cannot load the tokenizer of {name}: {one_line(exc)}"
        raise ModelLoadError(message) from exc


def locate(name_or_dir: str, settings: Settings) -> tuple[str, Path, ModelEntry | None]:
    """(served name, local directory, registry entry or None for a plain directory)."""
    try:
        registry = load_registry(settings.registry_file)
    except RegistryError as exc:  # callers catch one class
        raise ModelLoadError(str(exc)) from None
    entry = registry.get(name_or_dir)
    if entry is not None:
        return entry.name, materialize(entry, settings), entry
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path.resolve().name, path, None
    if "/" in name_or_dir or name_or_dir.startswith((".", "~")):
        hint = ""
        if is_hub_id(name_or_dir):
            hint = " (a hub repository is served through an entry of a registry file)"
        raise ModelLoadError(f"model directory not found: {path}{hint}")
    raise ModelLoadError(
        f"unknown model {name_or_dir!r}: known models are {', '.join(registry)}"
        " (or give a model directory)"
    )


def materialize(entry: ModelEntry, settings: Settings) -> Path:
    """The local directory of a registry entry, building or downloading it."""
    if entry.kind == "synthetic":
        from mlx_gen.models.synthetic.presets import ensure_model

        try:
            return ensure_model(
                entry.synthetic_preset, cache_dir=settings.cache_dir / "synthetic"
            )
        except KeyError as exc:
            raise ModelLoadError(f"model {entry.name!r}: {exc.args[0]}") from None
        except OSError as exc:
            raise ModelLoadError(
                f"cannot build {entry.name} in {settings.cache_dir}: {exc}"
            ) from None
    if entry.kind == "hub":
        from mlx_gen.models.hub import fetch_snapshot

        return fetch_snapshot(entry.source)
    if not entry.local_path.is_dir():
        raise ModelLoadError(
            f"model {entry.name!r}: directory not found: {entry.local_path}"
        )
    return entry.local_path


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a model directory, checked for an architecture mlx-lm has."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} is not a model directory: it has no config.json")
    try:
        config = json.loads(config_file.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{config_file} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelLoadError(f"{config_file} does not name a model_type")
    if not _architecture_known(config):
        raise ModelLoadError(
            f"unsupported architecture {config['model_type']!r} in {config_file}:"
            " this mlx-lm has no model of that type (a newer mlx-lm may)"
        )
    return config


def _architecture_known(config: dict[str, Any]) -> bool:
    # mlx-lm maps some model types and architectures onto the module that runs
    # them; a type is known when one of those modules exists.
    from mlx_lm.utils import MODEL_ARCHITECTURE_REMAPPING, MODEL_REMAPPING

    model_type = str(config["model_type"])
    candidates = [model_type, MODEL_REMAPPING.get(model_type, model_type)]
    architectures = config.get("architectures") or []
    if isinstance(architectures, str):
        architectures = [architectures]
    candidates += [
        MODEL_ARCHITECTURE_REMAPPING[(model_type, arch)]
        for arch in architectures
        if (model_type, arch) in MODEL_ARCHITECTURE_REMAPPING
    ]
    return any(
        re.fullmatch(r"\w+", name)
        and importlib.util.find_spec(f"mlx_lm.models.{name}") is not None
        for name in candidates
    )


def check_weights(path: Path) -> None:
    files = sorted(path.glob("model*.safetensors"))
    if not files:
        raise ModelLoadError(
            f"no weights in {path}: expected model*.safetensors (incomplete download?)"
        )
    for file in files:
        check_safetensors(file)


def check_safetensors(file: Path) -> None:
    """Read the header only: a truncated or garbled file fails here, not mid-load."""
    size = file.stat().st_size
    with open(file, "rb") as fh:
        prefix = fh.read(8)
        header_len = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if header_len < 0 or header_len > min(size - 8, _MAX_HEADER_BYTES):
            raise ModelLoadError(
                f"{file} is truncated or not a safetensors file: copy it again"
            )
        try:
            header = json.loads(fh.read(header_len))
            header.pop("__metadata__", None)
            end = max((t["data_offsets"][1] for t in header.values()), default=0)
        except (ValueError, AttributeError, TypeError, KeyError, IndexError):
            raise ModelLoadError(
                f"{file} is corrupt (not a valid safetensors header): copy it again"
            ) from None
    expected = 8 + header_len + end
    if size < expected:
        raise ModelLoadError(
            f"{file} is truncated ({size} of {expected} bytes): copy it again"
        )


def cast_for_backend(model: nn.Module) -> None:
    """On the CPU backend, make every floating parameter float32.

    bfloat16 mixture-of-experts layers fail there and bfloat16 quantized
    matmuls are about ten times slower. Quantized (integer) weights stay as
    they are. Metal and CUDA run the checkpoint's own dtypes.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    if mx.default_device().type == mx.DeviceType.cpu:
        cast = [
            (key, value.astype(mx.float32))
            for key, value in tree_flatten(model.parameters())
            if mx.issubdtype(value.dtype, mx.floating) and value.dtype != mx.float32
        ]
        if cast:
            model.update(tree_unflatten(cast))


def directory_entry(name: str, path: Path, config: dict[str, Any]) -> ModelEntry:
    """The entry of a directory served without a registry entry, from its config."""
    context = int(config.get("max_position_embeddings") or _DEFAULT_CONTEXT)
    return ModelEntry(
        name=name,
        source=str(path.resolve()),
        quantization=describe_quantization(config),
        context_length=max(16, context),
    )


def describe_quantization(config: dict[str, Any]) -> str:
    quantization = config.get("quantization")
    if isinstance(quantization, dict) and "bits" in quantization:
        mode = quantization.get("mode", "affine")
        return f"{quantization['bits']}bit" if mode == "affine" else str(mode)
    return str(config.get("torch_dtype") or config.get("dtype") or "unknown")


def _load_tokenizer(path: Path, config: dict[str, Any]) -> TokenizerWrapper:
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(path, eos_token_ids=config.get("eos_token_id"))
