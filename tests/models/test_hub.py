"""Hub models from a hub cache laid out on disk; the errors when the hub is away."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
from pathlib import Path

import pytest
from cli_run import run_cli
from rich.console import Console
from rich.filesize import decimal

from mlx_gen.models.hub import RichTqdm, cached_snapshot, fetch_snapshot, rich_progress

REPO = "test-org/tiny-gpt-oss"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> Path:
    """The layout huggingface_hub writes: blobs by hash, snapshot symlinks, a ref."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in model_dir.iterdir():
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, repo / "blobs" / digest)
        (snapshot / file.name).symlink_to(Path("../../blobs") / digest)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, tiny_model_path: Path) -> Path:
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, REPO, tiny_model_path)
    return cache


def test_cached_snapshot_is_found_without_network(hub_cache: Path):
    snapshot = hub_cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert cached_snapshot(REPO, hub_cache) == snapshot
    assert fetch_snapshot(REPO, hub_cache) == snapshot
    assert cached_snapshot("test-org/absent", hub_cache) is None


def hub_registry(home: Path) -> Path:
    registry = home / "models.toml"
    registry.write_text(
        f'[models.hubtiny]\nsource = "{REPO}"\nquantization = "float32"\n'
        "context_length = 4096\n"
    )
    return registry


def test_registered_hub_model_runs_from_the_cache(
    tmp_path: Path, hub_cache: Path, tiny_model_path: Path
):
    registry = hub_registry(tmp_path)
    args = ("--registry-file", str(registry), "--model", "hubtiny")
    result = run_cli(
        tmp_path, "generate", *args, "--prompt", "hi", "--max-tokens", "4", "--raw"
    )
    assert result.returncode == 0, result.stderr
    assert "tok/s" in result.stderr

    listing = run_cli(tmp_path, "models", "--registry-file", str(registry))
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "hubtiny" in line)
    assert "yes" in row
    # The blobs behind the snapshot's symlinks are what is counted.
    size = sum(f.stat().st_size for f in tiny_model_path.iterdir())
    assert decimal(size) in row


def error_line(result) -> str:
    """The one line of the failure: the last on stderr, and no traceback."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    return lines[-1]


def test_offline_without_the_model_in_the_cache(tmp_path: Path):
    result = run_cli(tmp_path, "generate", "--model", "gpt-oss-20b", "--prompt", "hi")
    assert len(result.stderr.strip().splitlines()) == 1
    line = error_line(result)
    assert "mlx-community/gpt-oss-20b-MXFP4-Q8 is not in the hub cache" in line
    assert "HF_HUB_OFFLINE" in line


def test_hub_that_cannot_be_reached(tmp_path: Path):
    # A bound socket that never listens: connections to it are refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = run_cli(
            tmp_path,
            "generate",
            "--model",
            "gpt-oss-20b-4bit",
            "--prompt",
            "hi",
            HF_HUB_OFFLINE="0",
            HF_ENDPOINT=endpoint,
        )
    line = error_line(result)
    assert "Downloading mlx-community/gpt-oss-20b-4bit" in result.stderr
    assert "cannot reach the hub to download mlx-community/gpt-oss-20b-4bit" in line


def test_download_progress_is_drawn_by_rich():
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    with rich_progress(console):
        data = RichTqdm(total=3 * 1024 * 1024, unit="B", unit_scale=True, desc="bytes")
        data.update(1024 * 1024)
        files = RichTqdm(total=2, desc="Fetching 2 files")
        files.update(2)
        data.close()
        files.close()
    text = out.getvalue()
    assert "bytes" in text
    assert "1.00MB/3.00MB" in text
    assert "Fetching 2 files" in text
    assert "2/2" in text


def test_bars_outside_a_progress_draw_nothing(capsys: pytest.CaptureFixture[str]):
    bar = RichTqdm(total=4, desc="quiet")
    bar.update(4)
    bar.close()
    assert capsys.readouterr() == ("", "")
