"""The call protocol of tensor parallelism: what rank 0 sends is what the other
ranks receive, over the ring backend on loopback, also when a call is longer
than a frame."""

from __future__ import annotations

import json
import subprocess
import sys

import mlx.core as mx
import pytest
from ranks import MLX_LAUNCH, free_ports

from mlx_gen.engine.distributed.protocol import decode, encode

# Frames of 2 + 32 values: the prefill below takes three of them.
TWO_RANKS = """
import json
import mlx.core as mx
from mlx_gen.engine.distributed.protocol import STOP, CallChannel

group = mx.distributed.init(strict=True)
channel = CallChannel(group, 2)
if group.rank() == 0:
    channel.send("prefill", (7, list(range(60))))
    channel.send("forward", (mx.array([3, 2**32 - 1], dtype=mx.uint32),))
    channel.send("release", ([],))
    channel.send(STOP)
else:
    received = []
    while True:
        name, args = channel.receive()
        shown = [[a.tolist(), str(a.dtype)] if isinstance(a, mx.array) else a
                 for a in args]
        received.append([name, shown])
        if name == STOP:
            break
    print("received:", json.dumps(received), flush=True)
"""


def test_a_call_decodes_as_it_was_encoded():
    tokens = mx.array([0, 5, 2**32 - 1], dtype=mx.uint32)
    name, args = decode(encode("restore", (4, [1, 2, 3], tokens, -9)))
    assert name == "restore"
    assert args[0] == 4 and args[1] == [1, 2, 3] and args[3] == -9
    assert args[2].dtype == mx.uint32 and args[2].tolist() == tokens.tolist()


@pytest.mark.parametrize(
    "arg", [1.5, "text", [1, 2.0], mx.array([1.0]), mx.array([[1]], dtype=mx.uint32)]
)
def test_a_call_carries_only_ints_lists_of_ints_and_token_arrays(arg):
    with pytest.raises(TypeError, match="cannot carry"):
        encode("prefill", (1, arg))


def test_two_ranks_receive_every_call_in_order(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANKS)
    done = subprocess.run(
        [str(MLX_LAUNCH), "--backend", "ring", "-n", "2",
         "--starting-port", str(free_ports(2)), "--", sys.executable, str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if "received:" in x)
    assert json.loads(line.split("received:", 1)[1]) == [
        ["prefill", [7, list(range(60))]],
        ["forward", [[[3, 2**32 - 1], "mlx.core.uint32"]]],
        ["release", [[]]],
        ["stop", []],
    ]
