"""Mixture-of-experts layers that read each expert once per verification.

mlx-lm's SwitchGLU groups a pass's rows by expert only from 64 (row, expert)
pairs up; below that each row multiplies its experts' weights on its own. A
verification pass has few rows (B x (1 + k)), most of which pick the same
experts, so ungrouped it reads the same expert weights again for every row:
on the benchmark model, 5 tokens of one row cost 2.3x one token ungrouped and
1.6x grouped (benchmarks/RESULTS.md). During a verification pass the model's
SwitchGLU layers group their rows whatever their number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.switch_layers import SwitchGLU


class _Grouped(SwitchGLU):
    def __call__(self, x: mx.array, indices: mx.array) -> mx.array:
        per_row = indices.shape[-1]
        flat = indices.flatten()
        order = mx.argsort(flat)
        rows = x.reshape(-1, 1, x.shape[-1])[order // per_row]
        experts = flat[order]
        up = self.up_proj(rows, experts, sorted_indices=True)
        gate = self.gate_proj(rows, experts, sorted_indices=True)
        out = self.down_proj(self.activation(up, gate), experts, sorted_indices=True)
        out = out[mx.argsort(order)]
        return out.reshape(*indices.shape, out.shape[-1])


@contextmanager
def grouped_experts(model: nn.Module) -> Iterator[None]:
    """Within the block, `model`'s SwitchGLU layers group rows by expert."""
    layers = [m for _, m in model.named_modules() if type(m) is SwitchGLU]
    for layer in layers:
        layer.__class__ = _Grouped
    try:
        yield
    finally:
        for layer in layers:
            layer.__class__ = SwitchGLU
