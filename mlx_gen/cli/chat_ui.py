"""How `mlx-gen chat` shows one answer: reasoning dimmed and folded, then the
content as it streams, then one line of token counts and speed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.text import Text

# Lines of reasoning kept on screen while it streams folded.
_TAIL_LINES = 4
# Control characters in model output (ESC above all) must not drive the
# terminal: each shows as U+FFFD. Newlines and tabs stay.
_CONTROLS = {
    c: "\ufffd" for c in [*range(32), *range(127, 160)] if chr(c) not in "\n\t"
}


@dataclass
class TurnStats:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    ttft: float | None  # seconds from request sent to the first streamed text
    decode_seconds: float  # first streamed text to the end of the stream
    effort: str

    @property
    def tokens_per_second(self) -> float | None:
        # The first token came at TTFT; the rest were decoded after it.
        if self.completion_tokens < 2 or self.decode_seconds <= 0:
            return None
        return (self.completion_tokens - 1) / self.decode_seconds

    def line(self) -> str:
        rate = self.tokens_per_second
        ttft = "–" if self.ttft is None else f"{self.ttft * 1000:.0f} ms"
        return (
            f"prompt {self.prompt_tokens} · completion {self.completion_tokens} "
            f"(reasoning {self.reasoning_tokens}) · "
            f"{'–' if rate is None else f'{rate:.1f}'} tok/s · TTFT {ttft} · "
            f"effort {self.effort}"
        )


class TurnView:
    """One answer on the terminal.

    Folded (the default), the reasoning streams as a dimmed tail of its last
    lines that collapses to a one-line summary when the answer starts; with
    `show_reasoning` it streams in full, dimmed, and stays.
    """

    def __init__(self, console: Console, show_reasoning: bool) -> None:
        self.console = console
        self.show_reasoning = show_reasoning
        self.reasoning_text = ""
        self._started: float | None = None
        self._live: Live | None = None
        self._in_content = False
        self._at_line_start = True

    def reasoning(self, text: str) -> None:
        text = text.translate(_CONTROLS)
        if self._started is None:
            self._started = time.perf_counter()
        self.reasoning_text += text
        if self.show_reasoning:
            self._write(text, "dim")
            return
        if self._live is None:
            # Redrawn a few times a second, not once per token.
            self._live = Live(
                console=self.console, transient=True, refresh_per_second=8
            ).__enter__()
        self._live.update(self._tail())

    def content(self, text: str) -> None:
        if not self._in_content:
            self._fold()
            self._in_content = True
        self._write(text, None)

    def close(self, note: str | None = None) -> None:
        """End the answer: fold what is left, finish the line, say `note`."""
        self._fold()
        if not self._at_line_start:
            self.console.print()
        if note:
            self.console.print(note, style="yellow", markup=False, highlight=False)

    def stats(self, stats: TurnStats) -> None:
        self.console.print(
            stats.line(), style="dim cyan", highlight=False, soft_wrap=True
        )

    def _tail(self) -> Text:
        """The last lines of the reasoning as the screen would wrap them."""
        width = max(self.console.width - 1, 10)
        # Only the end matters: never re-wrap a long reasoning from its start.
        recent = self.reasoning_text[-width * _TAIL_LINES * 2 :].split("\n")
        lines = [
            line[i : i + width]
            for line in recent
            for i in range(0, len(line) or 1, width)
        ]
        text = "\n".join(["thinking…", *lines[-_TAIL_LINES:]])
        return Text(text, style="dim", no_wrap=True, overflow="crop")

    def _fold(self) -> None:
        """Close the live tail (folded mode) and leave a one-line summary."""
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
        if self._started is None or self._in_content:
            return
        if self.show_reasoning:
            if not self._at_line_start:
                self.console.print()
                self._at_line_start = True
            return
        seconds = time.perf_counter() - self._started
        self.console.print(
            f"▸ thought for {seconds:.1f} s · /think shows the reasoning",
            style="dim",
            highlight=False,
        )
        self._started = None

    def _write(self, text: str, style: str | None) -> None:
        text = text.translate(_CONTROLS)
        self.console.print(
            text, style=style, end="", markup=False, highlight=False, soft_wrap=True
        )
        if text:
            self._at_line_start = text.endswith("\n")
