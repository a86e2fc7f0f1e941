"""Generated harmony token ids to reasoning, content and tool-call events, streamed.

A small state machine keyed on the control-token ids: HEADER (reading a
header; the stream starts here, since the prompt ended with
`<|start|>assistant`), BODY (inside a message, routing its text by channel and
recipient) and IDLE (between messages). It never raises: a header that does
not parse, stray text and misplaced control tokens all end up as content, so
no generated text is lost, whatever a confused model emits.
"""

from __future__ import annotations

import secrets
import string
from enum import Enum

from mlx_gen.chat.base import (
    ContentDelta,
    MessageEnd,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.chat.harmony_header import (
    Header,
    Segment,
    could_be_header,
    parse_header,
)
from mlx_gen.chat.harmony_tokens import (
    CALL,
    CHANNEL,
    CONSTRAIN,
    END,
    MESSAGE,
    RETURN,
    START,
)
from mlx_gen.engine.detokenizer import Detokenizer

# Real headers are one short line; longer text was never a header.
MAX_HEADER_CHARS = 160
_ID_ALPHABET = string.ascii_letters + string.digits
_ENDS = (END, RETURN, CALL)


def new_tool_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


class State(Enum):
    HEADER = "header"
    BODY = "body"
    IDLE = "idle"


class Route(Enum):
    REASONING = "reasoning"
    CONTENT = "content"
    TOOL = "tool"


class HarmonyParser:
    """One choice's parser: `feed` ids as they come, `finish` at the end."""

    def __init__(self, control_ids: dict[str, int], text: Detokenizer) -> None:
        """`text` decodes the ids that are not control tokens."""
        self.reasoning_tokens = 0
        self._control = {token_id: name for name, token_id in control_ids.items()}
        self._text = text
        self._events: list[ParsedEvent] = []
        self._tool_calls = 0
        self._state = State.HEADER
        self._segments: list[Segment] = [(None, "")]
        self._role_known = True
        self._header_tokens = 0
        self._route = Route.CONTENT
        self._channel: str | None = None

    def feed(self, token_ids: list[int]) -> list[ParsedEvent]:
        for token_id in token_ids:
            control = self._control.get(token_id)
            if control is None:
                self._on_text(token_id)
            elif self._state is State.HEADER:
                self._on_header_control(control)
            elif self._state is State.BODY:
                self._on_body_control(control)
            else:
                self._on_idle_control(control)
        return self._drain()

    def finish(self) -> list[ParsedEvent]:
        if self._state is State.HEADER:
            self._abandon_header()
        elif self._state is State.BODY:
            self._end_message()
        else:
            self._on_idle_control(END)  # shows a character cut short, if any
        self._state = State.IDLE
        return self._drain()

    # Text.

    def _on_text(self, token_id: int) -> None:
        text = self._text.add(token_id)
        if self._state is State.HEADER:
            self._header_tokens += 1
            self._add_header_text(text)
            if (
                "\n" in text
                or len(self._header_text()) > MAX_HEADER_CHARS
                or not could_be_header(self._segments, self._role_known)
            ):
                self._open_body(None)
            return
        if self._state is State.IDLE:
            if not text:
                return
            self._open_loose_body()
        if self._channel == "analysis":
            self.reasoning_tokens += 1
        self._emit(text)

    # Control tokens, by state.

    def _on_header_control(self, control: str) -> None:
        self._header_tokens += 1
        self._add_header_text(self._text.flush())
        if control == MESSAGE:
            self._open_body(parse_header(self._segments, self._role_known))
        elif control in (CHANNEL, CONSTRAIN):
            self._segments.append((control, ""))
        else:
            self._abandon_header()
            self._state = State.IDLE
            if control == START:
                self._start_header(role_known=False, first=None)

    def _on_body_control(self, control: str) -> None:
        if self._channel == "analysis" and control not in (START, CHANNEL):
            self.reasoning_tokens += 1  # the next header counts its own opener
        if control in (MESSAGE, CONSTRAIN):
            # Meaningless inside a message: dropped, but it still ends a run
            # of text, as every control token does.
            self._emit(self._text.flush())
            return
        self._end_message()
        if control == START:
            self._start_header(role_known=False, first=None)
        elif control == CHANNEL:
            # `<|end|><|start|>assistant` forgotten: read the new header anyway.
            self._start_header(role_known=True, first=CHANNEL)

    def _on_idle_control(self, control: str) -> None:
        held = self._text.flush()
        if held:
            # A character cut short before this token: content of its own.
            self._open_loose_body()
            self._emit(held)
            self._on_body_control(control)
        elif control == START:
            self._start_header(role_known=False, first=None)
        elif control == CHANNEL:
            self._start_header(role_known=True, first=CHANNEL)

    # Headers.

    def _start_header(self, role_known: bool, first: str | None) -> None:
        self._state = State.HEADER
        self._role_known = role_known
        self._segments = [(None, "")] if first is None else [(None, ""), (first, "")]
        self._header_tokens = 1

    def _add_header_text(self, text: str) -> None:
        marker, previous = self._segments[-1]
        self._segments[-1] = (marker, previous + text)

    def _header_text(self) -> str:
        return "".join(text for _, text in self._segments)

    def _abandon_header(self) -> None:
        """A header cut short: nothing if it parses, else its text is content."""
        self._add_header_text(self._text.flush())
        if parse_header(self._segments, self._role_known) is None:
            text = self._header_text()
            if text:
                self._route, self._channel = Route.CONTENT, None
                self._emit(text)
                self._events.append(MessageEnd(channel=None))

    def _open_body(self, header: Header | None) -> None:
        self._open_loose_body()
        if header is None:
            # Not a header after all: its text is the start of the content.
            self._emit(self._header_text())
            return
        self._channel = header.channel
        if self._channel == "analysis":
            self.reasoning_tokens += self._header_tokens
        name = header.function_name
        if name is not None:
            self._route = Route.TOOL
            call = ToolCallStart(self._tool_calls, new_tool_call_id(), name)
            self._events.append(call)
            self._tool_calls += 1
        elif self._channel == "analysis" and header.role in (None, "assistant"):
            self._route = Route.REASONING

    def _open_loose_body(self) -> None:
        """Text outside any message: shown as content."""
        self._state = State.BODY
        self._route, self._channel = Route.CONTENT, None

    def _end_message(self) -> None:
        self._emit(self._text.flush())
        self._events.append(MessageEnd(channel=self._channel))
        self._state = State.IDLE

    # Events.

    def _emit(self, text: str) -> None:
        if not text:
            return
        last = self._events[-1] if self._events else None
        if self._route is Route.TOOL:
            index = self._tool_calls - 1
            if isinstance(last, ToolCallArgumentsDelta) and last.index == index:
                last.text += text
            else:
                self._events.append(ToolCallArgumentsDelta(index, text))
            return
        kind = ReasoningDelta if self._route is Route.REASONING else ContentDelta
        if type(last) is kind:
            last.text += text
        else:
            self._events.append(kind(text))

    def _drain(self) -> list[ParsedEvent]:
        events, self._events = self._events, []
        return events
