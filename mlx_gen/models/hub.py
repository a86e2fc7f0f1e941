"""Hugging Face hub snapshots: the local cache first, a download with a progress bar
only when the cache does not have the model.

The cache is huggingface_hub's own (`HF_HUB_CACHE`, `HF_HOME`), and
`HF_HUB_OFFLINE=1` is respected: a model is never fetched twice.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from tqdm.std import tqdm as std_tqdm

from mlx_gen.errors import ModelLoadError, one_line

# What an MLX model needs; never the *.py of custom architectures (not run here).
ALLOW_PATTERNS = [
    "*.json",
    "model*.safetensors",
    "tokenizer.model",
    "*.tiktoken",
    "*.txt",
    "*.jsonl",
    "*.jinja",
]


def cached_snapshot(repo_id: str, cache_dir: Path | None = None) -> Path | None:
    """The snapshot directory of `repo_id` in the local hub cache, if there is one."""
    try:
        path = snapshot_download(
            repo_id,
            cache_dir=cache_dir,
            local_files_only=True,
            allow_patterns=ALLOW_PATTERNS,
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return Path(path)


def fetch_snapshot(
    repo_id: str, cache_dir: Path | None = None, console: Console | None = None
) -> Path:
    """`repo_id` from the cache, or downloaded into it; ModelLoadError if neither."""
    cached = cached_snapshot(repo_id, cache_dir)
    if cached is not None:
        return cached
    where = cache_dir or constants.HF_HUB_CACHE
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(
            f"{repo_id} is not in the hub cache ({where}) and HF_HUB_OFFLINE is set:"
            " unset it to download, or copy the model into that cache"
        )
    console = console or Console(stderr=True)
    console.print(f"Downloading {repo_id} into {where}")
    try:
        with rich_progress(console):
            path = snapshot_download(
                repo_id,
                cache_dir=cache_dir,
                allow_patterns=ALLOW_PATTERNS,
                tqdm_class=RichTqdm,
            )
    except LocalEntryNotFoundError:
        raise ModelLoadError(
            f"cannot reach the hub to download {repo_id}: check the network,"
            f" or copy the model into the hub cache ({where})"
        ) from None
    except GatedRepoError:
        raise ModelLoadError(
            f"{repo_id} is gated: accept its terms on the hub, then `hf auth login`"
        ) from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"{repo_id} has no such revision on the hub") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"no repository {repo_id} on the hub (or it is private: `hf auth login`)"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(f"download of {repo_id} failed: {one_line(exc)}") from None
    return Path(path)


class RichTqdm(std_tqdm):
    """tqdm's interface, drawn by rich: huggingface_hub reports progress to tqdm.

    The bars go to the `Progress` that `rich_progress` opened; a bar made
    outside it draws nothing.
    """

    progress: ClassVar[Progress | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._task: Any = None  # display() runs inside tqdm's __init__
        kwargs["file"] = io.StringIO()  # tqdm's own text output goes nowhere
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        progress = type(self).progress
        if progress is None:
            return True
        total = self.total or None
        fields = {"amount": self._amount()}
        if self._task is None:
            self._task = progress.add_task(self.desc or "", total=total, **fields)
        progress.update(
            self._task,
            completed=self.n,
            total=total,
            description=self.desc or "",
            **fields,
        )
        return True

    def _amount(self) -> str:
        if not self.unit_scale:  # a count of files
            return f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        divisor = 1024 if self.unit == "B" else 1000
        done = self.format_sizeof(self.n, self.unit, divisor)
        if not self.total:
            return done
        return f"{done}/{self.format_sizeof(self.total, self.unit, divisor)}"


@contextmanager
def rich_progress(console: Console) -> Iterator[Progress]:
    """Show every `RichTqdm` bar made inside this block on `console`."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        RichTqdm.progress = progress
        try:
            yield progress
        finally:
            RichTqdm.progress = None
