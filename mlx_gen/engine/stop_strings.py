"""Stop strings found in streamed text, shared by the engine (raw text of
/v1/completions) and the chat answers (the content a user sees)."""

from __future__ import annotations


class StopStrings:
    """Finds stop strings in streamed text. Text that could be the start of a
    stop string is held back until the next tokens decide; a matched stop
    string and anything after it are never emitted."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.matched: str | None = None  # the stop string found, once found

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string matched)."""
        if not self._stops:
            return text, False
        buf = self._held + text
        hits = [(at, s) for s in self._stops if (at := buf.find(s)) >= 0]
        if hits:
            self._held = ""
            at, self.matched = min(hits, key=lambda hit: hit[0])
            return buf[:at], True
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), hold, -1):
                if buf.endswith(stop[:k]):
                    hold = k
                    break
        self._held = buf[len(buf) - hold :]
        return buf[: len(buf) - hold], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held
