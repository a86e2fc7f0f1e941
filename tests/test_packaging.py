"""What a non-editable install ships: the registry lives at the top of the
repository, where users read it first, and the installed package still finds it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlx-gen installed from a copy of the checkout with `pip install .`
    (no dependencies: they are this environment's)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    target = work / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run(
        [*pip, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return target


def test_the_registry_is_at_the_top_of_the_repository():
    assert (REPO / "models.toml").is_file()
    assert "[models.demo]" in (REPO / "models.toml").read_text()


def test_a_non_editable_install_lists_the_shipped_models(
    installed: Path, tmp_path: Path
):
    shipped = installed / "mlx_gen" / "models.toml"
    assert shipped.is_file() and not shipped.is_symlink()
    assert shipped.read_text() == (REPO / "models.toml").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_GEN_")}
    env.update(PYTHONPATH=str(installed), COLUMNS="200", MLX_GEN_USE_OPENBLAS="0")
    result = subprocess.run(
        [sys.executable, "-c", "import mlx_gen; print(mlx_gen.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith(str(installed))
    result = subprocess.run(
        [sys.executable, "-m", "mlx_gen", "models"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"demo", "tiny", "bench", "gpt-oss-20b"} <= names
