from __future__ import annotations

import pytest

from mlx_gen.errors import one_line


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ValueError("shape mismatch\n  at layer 3\n"), "shape mismatch"),
        (OSError("\n  disk full\nmore"), "disk full"),
        (KeyError(), "KeyError"),
        (RuntimeError("   \n "), "RuntimeError"),
    ],
)
def test_one_line_is_the_first_line_or_the_type(exc: BaseException, line: str):
    assert one_line(exc) == line
