"""Reading one harmony message header: role, recipient, channel, content type.

A header arrives as segments: the text before any marker (role and maybe
` to=recipient`), the text after `<|channel|>` (the channel, maybe followed by
` to=recipient` and a content type) and the text after `<|constrain|>` (the
content type). Anything that does not fit this shape is not a header, and the
parser then shows its text as content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlx_gen.chat.harmony_tokens import CHANNEL, CONSTRAIN

FUNCTIONS_PREFIX = "functions."
_WORD = re.compile(r"[A-Za-z_][\w.:\-]*")
_RECIPIENT = re.compile(r"to=([A-Za-z_][\w.:\-]*)")

Segment = tuple[str | None, str]  # (the marker that opened it, its text)

# What the start of each segment may look like while a header is still being
# written: lets the parser give up on a non-header at once instead of holding
# its text back until the length cap.
_RECIPIENT_PREFIX = r"(?:t|to|to=[\w.:\-]*)"
_OPENING_PREFIX = {
    True: re.compile(rf"\s*{_RECIPIENT_PREFIX}?\s*"),
    False: re.compile(rf"\s*(?:[A-Za-z_][\w.:\-]*(?:\s+{_RECIPIENT_PREFIX}?)?)?\s*"),
}
_MARKED_PREFIX = re.compile(r"[\w.:\-=\s]*")


@dataclass(frozen=True)
class Header:
    role: str | None = None
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None

    @property
    def function_name(self) -> str | None:
        """The function this message calls, if it is an assistant's tool call."""
        if self.role not in (None, "assistant") or not self.recipient:
            return None
        if not self.recipient.startswith(FUNCTIONS_PREFIX):
            return None
        return self.recipient[len(FUNCTIONS_PREFIX) :] or None


def parse_header(segments: list[Segment], role_known: bool) -> Header | None:
    """The header these segments spell, or None if they spell none.

    `role_known`: the role was already given (the prompt ended with
    `<|start|>assistant`), so the first segment may hold only a recipient.
    """
    fields: dict[str, str | None] = {
        "role": None,
        "channel": None,
        "recipient": None,
        "content_type": None,
    }
    markers = [marker for marker, _ in segments]
    if len(set(markers)) != len(markers):
        return None
    for marker, text in segments:
        words = text.split()
        if marker is None:
            if not role_known and words and not words[0].startswith("to="):
                fields["role"] = words.pop(0)
        elif marker == CHANNEL:
            if not words:
                return None
            fields["channel"] = words.pop(0)
        elif marker == CONSTRAIN:
            if len(words) > 1:
                return None
            fields["content_type"] = words.pop() if words else None
        if not _take_rest(words, marker, fields):
            return None
    return Header(**fields)


def could_be_header(segments: list[Segment], role_known: bool) -> bool:
    """Whether more text and markers could still make these segments a header."""
    marker, text = segments[-1]
    if marker is None:
        return _OPENING_PREFIX[role_known].fullmatch(text) is not None
    return _MARKED_PREFIX.fullmatch(text) is not None and len(text.split()) <= 3


def _take_rest(
    words: list[str], marker: str | None, fields: dict[str, str | None]
) -> bool:
    """Read a segment's optional recipient (and content type after a channel)."""
    for word in words:
        match = _RECIPIENT.fullmatch(word)
        if match and fields["recipient"] is None:
            fields["recipient"] = match.group(1)
        elif marker == CHANNEL and fields["content_type"] is None:
            fields["content_type"] = word
        else:
            return False
    return all(
        value is None or _WORD.fullmatch(value)
        for key, value in fields.items()
        if key != "recipient"
    )
