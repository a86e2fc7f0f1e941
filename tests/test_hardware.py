from __future__ import annotations

import os
from importlib.metadata import version

import mlx.core as mx

from mlx_gen.hardware import hardware


def test_hardware_names_this_machine_and_the_installed_versions():
    info = hardware()
    assert info["metal"] is mx.metal.is_available()
    assert info["accelerator"].startswith("Apple") is info["metal"]
    assert info["cpu"] and info["cpu"] != "unknown"
    assert info["cpu_cores"] == os.cpu_count()
    assert info["memory_bytes"] > 2**30
    assert (info["mlx"], info["mlx_lm"]) == (mx.__version__, version("mlx-lm"))
    assert info["mlx_gen"] == version("mlx-gen-server")
