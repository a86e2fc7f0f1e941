"""The benchmark suite's fixtures and its summary.

Run it with OpenBLAS preloaded (`just bench`, or
`LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
pytest benchmarks/ --benchmark-only`). Each benchmark records its figures with
the `record` fixture; at the end of the session they are written, with the
machine and the command, to BENCH_OUT/results.json and results.md (default
benchmarks/out/), from which RESULTS.md is updated by hand.
"""

from __future__ import annotations

import copy
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlx_gen.models.synthetic.presets import ensure_model

HERE = Path(__file__).parent
# A benchmark may run for many minutes; the project's 300 s test timeout
# is for tests.
BENCH_TIMEOUT_S = 3600
_RECORDED: dict[str, dict[str, Any]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlx-gen benchmarks")
    group.addoption(
        "--bench-rounds",
        type=int,
        default=4,
        help="interleaved rounds of each comparison (default 4)",
    )
    group.addoption(
        "--baseline-mlx-gen",
        type=Path,
        default=None,
        help="the mlx-gen executable of another checkout (e.g. main's) that"
        " test_bursts.py measures side by side with this one",
    )
    group.addoption(
        "--mlx-gen-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of this checkout's `mlx-gen serve` (e.g. max_batch_size=128),"
        " passed as MLX_GEN_NAME; repeatable",
    )
    group.addoption(
        "--bench-out",
        type=Path,
        default=HERE / "out",
        help="where results.json and results.md go (default benchmarks/out)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(BENCH_TIMEOUT_S))


@pytest.fixture(scope="session")
def rounds(pytestconfig: pytest.Config) -> int:
    return max(1, pytestconfig.getoption("--bench-rounds"))


@pytest.fixture(scope="session")
def cache_root() -> Path:
    """The mlx-gen cache the servers under test read too (MLX_GEN_CACHE_DIR)."""
    from mlx_gen.settings import default_cache_dir

    return Path(os.environ.get("MLX_GEN_CACHE_DIR") or default_cache_dir())


@pytest.fixture(scope="session")
def bench_model_path(cache_root: Path) -> Path:
    return ensure_model("bench", cache_dir=cache_root / "synthetic")


@pytest.fixture(scope="session")
def bench_model(bench_model_path: Path) -> tuple[Any, Any]:
    """(model, TokenizerWrapper) of the bench preset, float32, loaded once."""
    import mlx_lm

    return tuple(mlx_lm.load(str(bench_model_path))[:2])


@pytest.fixture(scope="session")
def no_eos_tokenizer(bench_model: tuple[Any, Any]) -> Any:
    """The tokenizer without EOS ids, for mlx-lm's paths that stop on them:
    a random model would otherwise end some streams early."""
    tokenizer = copy.copy(bench_model[1])
    tokenizer.eos_token_ids = []
    return tokenizer


@pytest.fixture(scope="session")
def engine(bench_model: tuple[Any, Any]) -> Iterator[Any]:
    """The mlx-gen engine on the bench model, default settings but no stop
    token, so that every request generates exactly its max_tokens."""
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import LLMEngine

    model, tokenizer = bench_model
    engine = LLMEngine(model, tokenizer, EngineConfig(default_stop_token_ids=[]))
    engine.start()
    yield engine
    engine.shutdown()


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory, cache_root: Path) -> dict:
    from servers import server_env as make_env

    return make_env(cache_root, tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def mlx_gen_server(
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    bench_model_path: Path,
    server_env: dict,
) -> Iterator[Any]:
    """`mlx-gen serve --model bench` in a child process, one per module, with
    the settings of --mlx-gen-setting."""
    from servers import mlx_gen_serve

    env = dict(server_env)
    for setting in pytestconfig.getoption("--mlx-gen-setting"):
        name, _, value = setting.partition("=")
        env[f"MLX_GEN_{name.upper()}"] = value
    with mlx_gen_serve(tmp_path_factory.mktemp("mlx-gen-serve"), env) as server:
        yield server


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Seeded by the benchmark's name: the same prompts in every run."""
    return random.Random(request.node.name)


@pytest.fixture
def record(
    benchmark: Any, request: pytest.FixtureRequest
) -> Callable[..., dict[str, Any]]:
    """Keep figures in the benchmark's extra_info and in the session summary."""
    entry: dict[str, Any] = {"load_average_start": os.getloadavg()[0]}
    _RECORDED[request.node.nodeid] = entry

    def keep(**figures: Any) -> dict[str, Any]:
        entry.update(figures)
        entry["load_average_end"] = os.getloadavg()[0]
        benchmark.extra_info.update(json.loads(json.dumps(entry, default=str)))
        return entry

    return keep


def machine() -> dict[str, Any]:
    import platform

    from mlx_gen.hardware import hardware

    info = hardware()
    try:
        os_release = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        info["os"] = os_release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        info["os"] = platform.platform()
    info["kernel"] = platform.release()
    info["python"] = platform.python_version()
    return info


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Merge this session's figures into BENCH_OUT/results.json (a run of a
    few benchmarks keeps the others' last figures) and render results.md."""
    if not _RECORDED:
        return
    from summary import render_markdown

    out: Path = session.config.getoption("--bench-out")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    preload = os.environ.get("LD_PRELOAD")
    command = " ".join(
        [f"LD_PRELOAD={preload}"] * bool(preload) + ["pytest", *sys.argv[1:]]
    )
    date = time.strftime("%Y-%m-%d %H:%M:%S %z")
    benchmarks = results.get("benchmarks", {})
    for nodeid, figures in _RECORDED.items():
        benchmarks[nodeid] = {"date": date, "command": command, **figures}
    results.update(machine=machine(), benchmarks=dict(sorted(benchmarks.items())))
    text = json.dumps(results, indent=2, default=str) + "\n"
    path.write_text(text, encoding="utf-8")
    (out / "results.md").write_text(render_markdown(results), encoding="utf-8")
