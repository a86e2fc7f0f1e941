"""Server-sent events: JSON objects as one-line `data:` frames, with an
`event:` line where the API names its events (Anthropic's).

The frames themselves (which chunks, in what order) come from
server/answers/deliver.py; this module only encodes and sends them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse

from mlx_gen.settings import Settings

# json.dumps leaves U+0085, U+2028 and U+2029 raw, and clients that split lines
# the way str.splitlines does (httpx's iter_lines among them) cut a frame there.
# Escaped, the JSON means the same and each frame stays one line.
# A frame: its data, or its fields ({"event": ..., "data": ...}).
Frame = str | dict[str, str]

_LINE_BREAKS = str.maketrans(
    {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def encode(obj: dict[str, Any]) -> str:
    """The data of one frame."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS)


def sse_response(
    frames: AsyncIterator[Frame], settings: Settings, headers: dict[str, str]
) -> EventSourceResponse:
    return EventSourceResponse(
        frames,
        headers=headers,
        # Comment lines keep proxies and clients from timing out a long prefill.
        ping=settings.sse_keepalive_seconds,
        sep="\n",
        # On SIGTERM a stream in flight may finish within the drain timeout.
        shutdown_grace_period=settings.drain_timeout,
    )
