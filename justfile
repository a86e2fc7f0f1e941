# Developer tasks. `pip install rust-just` provides `just` where the OS has none.

# Create .venv and install mlx-gen with its test tools.
install:
    python3 -m venv .venv
    .venv/bin/pip install -e '.[test]'

# The whole test suite (what CI runs).
test *ARGS:
    .venv/bin/python -m pytest {{ARGS}}

# Format and lint.
lint:
    .venv/bin/ruff format .
    .venv/bin/ruff check --fix .

# Serve the built-in demo model on 127.0.0.1:8000.
serve MODEL="demo":
    .venv/bin/mlx-gen serve --model {{MODEL}}

# The benchmark suite; on Linux it runs under Debian's OpenBLAS when installed.
bench *ARGS:
    LD_PRELOAD="$(ls /usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3 2>/dev/null | head -n1)" .venv/bin/python -m pytest benchmarks/ --benchmark-only {{ARGS}}
