"""Stored Responses: bounded in number and age, least recently used evicted
first, and keyed by API key so one key never reads another's responses."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    # The conversation up to and including this response, as chat messages
    # (without its instructions: a continuation brings its own).
    history: list[dict[str, Any]]
    stored_at: float = field(default_factory=time.monotonic)


class ResponseStore:
    def __init__(self, max_size: int, max_age: float) -> None:
        self.max_size = max_size
        self.max_age = max_age
        self._entries: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key_id: str, entry: StoredResponse) -> None:
        with self._lock:
            self._entries[(key_id, entry.response["id"])] = entry
            self._entries.move_to_end((key_id, entry.response["id"]))
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        with self._lock:
            entry = self._entries.get((key_id, response_id))
            if entry is None:
                return None
            if time.monotonic() - entry.stored_at > self.max_age:
                del self._entries[(key_id, response_id)]
                return None
            self._entries.move_to_end((key_id, response_id))
            return entry

    def delete(self, key_id: str, response_id: str) -> bool:
        with self._lock:
            return self._entries.pop((key_id, response_id), None) is not None
