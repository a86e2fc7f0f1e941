"""CI runs what a new user runs: every command of .ci/run stands in README.md."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_only_commands_the_readme_gives():
    readme = REPO / "README.md"
    blocks = readme.read_text().split("```sh\n")[1:]
    readme_commands = {line for b in blocks for line in b.split("```")[0].splitlines()}
    script = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [
        line
        for line in script
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands, "CI runs nothing"
    assert [c for c in commands if c not in readme_commands] == []
    assert ". .venv/bin/activate && python -m pytest" in commands
