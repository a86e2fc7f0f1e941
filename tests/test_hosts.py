"""Loopback hosts: what `serve` may expose without a key, what bench reports."""

from __future__ import annotations

import pytest

from mlx_gen.hosts import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("127.8.9.10", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("myhost.local", False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
