"""The `mlx-gen` command (main.py) and its sub-commands, one module each:
`run(args, settings) -> int`.

A module imports mlx, mlx-lm and other heavy packages inside `run`, so that
`mlx-gen --help` and light commands start fast.
"""
