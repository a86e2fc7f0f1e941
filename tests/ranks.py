"""Ranks of `mlx.launch` on loopback, for the tensor-parallel tests."""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

MLX_LAUNCH = Path(sys.executable).with_name("mlx.launch")


def free_ports(n: int) -> int:
    """The first of `n` consecutive free loopback ports (the ring backend
    takes one per rank, from `--starting-port` on)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + n > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + n):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free ports")
