"""The benchmark suite is not run by the tests (it takes an hour and wants
OpenBLAS), so a module or fixture it uses can be renamed under it unseen:
collecting it imports every benchmark module and checks their parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_suite_collects_without_errors():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    listed = [line for line in run.stdout.splitlines() if "::test_" in line]
    modules = {line.split("::")[0] for line in listed}
    shipped = {
        f"benchmarks/{path.name}" for path in (ROOT / "benchmarks").glob("test_*.py")
    }
    assert modules == shipped  # every benchmark module has benchmarks
