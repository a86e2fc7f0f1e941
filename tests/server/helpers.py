"""Helpers of the server tests."""

from __future__ import annotations

from typing import Any


def script_ids(tokenizer: Any, text: str) -> list[int]:
    """Harmony text (control tokens written out) as the ids a model would emit."""
    return tokenizer.encode(text, add_special_tokens=False)
