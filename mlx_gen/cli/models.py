"""`mlx-gen models`: the registry as a table, with what is already on disk."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from mlx_gen.models.registry import ModelEntry, load_registry
from mlx_gen.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    entries = list(load_registry(settings.registry_file).values())
    table = Table(
        title=f"Models (default: {settings.model})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        caption="Models not on disk are fetched on first use: synthetic ones are "
        "built offline, hub ones downloaded once.",
        caption_justify="left",
    )
    table.add_column("name", no_wrap=True)
    # Where a model comes from is what this table is for: rich shrinks the
    # widest columns first, so the source keeps a floor and "on disk" wraps.
    longest_source = max((len(e.source) for e in entries), default=6)
    table.add_column("source", overflow="fold", min_width=min(longest_source, 24))
    table.add_column("quant", no_wrap=True)
    table.add_column("context", justify="right", no_wrap=True)
    table.add_column("on disk", no_wrap=True)
    for entry in entries:
        local, path = availability(entry, settings.cache_dir / "synthetic")
        if path is not None:
            local = f"{local}, {decimal(directory_size(path))}"
        name = f"[bold]{entry.name}[/]" if entry.name == settings.model else entry.name
        table.add_row(
            name,
            entry.source,
            entry.quantization,
            context_label(entry.context_length),
            local,
        )
    Console().print(table)
    return 0


def availability(entry: ModelEntry, synthetic_cache: Path) -> tuple[str, Path | None]:
    """A word for the local state of `entry`, and its directory when on disk."""
    if entry.kind == "synthetic":
        from mlx_gen.models.synthetic.presets import model_dir

        path = model_dir(entry.synthetic_preset, synthetic_cache)
        if (path / "config.json").is_file():
            return "yes", path
        return "no", None
    if entry.kind == "hub":
        from mlx_gen.models.hub import cached_snapshot

        path = cached_snapshot(entry.source)
        return ("yes", path) if path is not None else ("no", None)
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


def context_label(tokens: int) -> str:
    """131072 -> "128K": context lengths are powers of two in practice."""
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else f"{tokens:,}"
