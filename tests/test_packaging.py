"""What a non-editable install ships: the registry lives at the top of the
repository, where users read it first, and the installed package still finds it."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
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
    shipped = installed / "mlx_gen" / "models" / "models.toml"
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


def test_what_the_commands_import_is_installed_without_extras():
    """`pip install .` alone must be enough for every sub-command (the test
    extra is for tests), e.g. `mlx-gen chat --url` and its openai client."""
    runtime = {
        re.split(r"[<>=!~; \[]", requirement)[0].lower()
        for requirement in metadata.requires("mlx-gen-server") or []
        if "extra ==" not in requirement
    }
    imported = set()
    for path in (REPO / "mlx_gen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {
        name
        for name in imported - set(sys.stdlib_module_names) - {"mlx_gen"}
        if name != "tomli"  # the backport, for Python 3.10 only
    }
    # pydantic pins its own core exactly: its errors are part of its API.
    distribution = {"pydantic_core": "pydantic", "mlx_lm": "mlx-lm"}
    distribution |= {"sse_starlette": "sse-starlette"}
    distribution |= {"huggingface_hub": "huggingface-hub"}
    distribution |= {
        "pydantic_settings": "pydantic-settings",
        "prometheus_client": "prometheus-client",
    }
    missing = {
        name for name in third_party if distribution.get(name, name) not in runtime
    }
    assert missing == set()


def test_a_non_editable_install_ships_the_evaluation_text(installed: Path):
    """`eval kl` and `convert --check` score it when no --text is given."""
    shipped = installed / "mlx_gen" / "data" / "eval_text.txt"
    text = (REPO / "mlx_gen" / "data" / "eval_text.txt").read_text("utf-8")
    assert shipped.read_text("utf-8") == text
