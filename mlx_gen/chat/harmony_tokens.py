"""The harmony control tokens, found by string in whatever tokenizer carries them.

Test tokenizers put these strings at ids of their own, so no id is ever
hard-coded: a tokenizer speaks harmony when every one of them is a single
token of its vocabulary.
"""

from __future__ import annotations

from typing import Any

START = "<|start|>"
END = "<|end|>"
MESSAGE = "<|message|>"
CHANNEL = "<|channel|>"
CONSTRAIN = "<|constrain|>"
RETURN = "<|return|>"
CALL = "<|call|>"

CONTROL_TOKENS = (START, END, MESSAGE, CHANNEL, CONSTRAIN, RETURN, CALL)


def control_token_ids(tokenizer: Any) -> dict[str, int] | None:
    """Each control token's id, or None when the tokenizer lacks any of them."""
    ids: dict[str, int] = {}
    for token in CONTROL_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            return None
        if tokenizer.convert_ids_to_tokens(token_id) != token:
            return None
        ids[token] = token_id
    return ids
