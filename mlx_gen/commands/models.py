"""`mlx-gen models`: the registry as a table, with what is already on disk."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from mlx_gen.registry import ModelEntry, load_registry
from mlx_gen.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    table = Table(title=f"Models (default: {settings.model})", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("quantization", no_wrap=True)
    table.add_column("context", justify="right", no_wrap=True)
    table.add_column("local", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for entry in load_registry(settings.registry_file).values():
        local, path = availability(entry, settings.cache_dir / "synthetic")
        size = decimal(directory_size(path)) if path is not None else "-"
        name = f"[bold]{entry.name}[/]" if entry.name == settings.model else entry.name
        table.add_row(
            name,
            entry.source,
            entry.quantization,
            f"{entry.context_length:,}",
            local,
            size,
        )
    Console().print(table)
    return 0


def availability(entry: ModelEntry, synthetic_cache: Path) -> tuple[str, Path | None]:
    """A word for the local state of `entry`, and its directory when on disk."""
    if entry.kind == "synthetic":
        from mlx_gen.synthetic import model_dir

        path = model_dir(entry.synthetic_preset, synthetic_cache)
        if (path / "config.json").is_file():
            return "yes (synthetic)", path
        return "built on use", None
    if entry.kind == "hub":
        from mlx_gen.hub import cached_snapshot

        path = cached_snapshot(entry.source)
        return ("yes", path) if path is not None else ("no: downloads on use", None)
    if entry.local_path.is_dir():
        return "yes", entry.local_path
    return "missing", None


def directory_size(path: Path) -> int:
    """Bytes of the files under `path`, following the hub cache's symlinks to blobs."""
    return sum(
        os.stat(os.path.join(root, name)).st_size
        for root, _, names in os.walk(path)
        for name in names
    )
