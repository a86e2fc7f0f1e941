"""Seeded random chat requests: every JSON-Schema construct, every kind of history.

`RequestGenerator(seed).request()` is a chat-completions body as a client
would send it; `features` names the constructs it used.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from .harmony_schemas import SchemaGenerator

TOOL_NAMES = ["get_weather", "search", "book.room", "run-code", "f", "lookup_2"]


class RequestGenerator(SchemaGenerator):
    def parameters(self) -> Any:
        kind = self.rng.choice(
            ["absent", "empty", "object", "no properties", "full", "full", "full"]
        )
        self.use(f"parameters: {kind}")
        if kind == "absent":
            return None
        if kind == "empty":
            return {}
        if kind == "object":
            return {"type": "object"}
        if kind == "no properties":
            return {"type": "object", "properties": {}}
        parameters = self.object_schema(0)
        if self.chance(0.2):
            parameters["description"] = self.description() or "Top level."
        if self.chance(0.1):
            self.use("parameters: untyped")
            del parameters["type"]
        if self.chance(0.3):
            parameters["$defs"] = {"Thing": self.object_schema(2)}
        return parameters

    def tools(self) -> list[dict[str, Any]]:
        names = self.rng.sample(TOOL_NAMES, self.rng.randint(1, 4))
        tools = []
        for name in names:
            function: dict[str, Any] = {"name": name}
            description = self.description()
            if description is not None:
                function["description"] = description
            parameters = self.parameters()
            if parameters is not None:
                function["parameters"] = parameters
            tools.append({"type": "function", "function": function})
        return tools

    # Histories.

    def arguments(self) -> str:
        value = {"city": self.text(), "days": self.rng.randint(0, 9)}
        if self.chance(0.1):
            return self.rng.choice(["", "{not json", "[]"])
        return json.dumps(value, ensure_ascii=self.chance(0.5))

    def assistant(self, calls: list[dict[str, Any]] | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant"}
        if self.chance(0.7):
            self.use("reasoning")
            key = self.rng.choice(["reasoning", "reasoning_content"])
            message[key] = self.text()
        if calls:
            self.use("several calls" if len(calls) > 1 else "tool call")
            message["tool_calls"] = calls
            if self.chance(0.5):
                self.use("preamble")
                message["content"] = self.text() or "Checking."
            else:
                message["content"] = None
        else:
            message["content"] = self.text()
        return message

    def tool_round(self, names: list[str], ids: Iterator[int]) -> list[dict]:
        calls = []
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            function = {"name": self.rng.choice(names), "arguments": self.arguments()}
            call = {"id": f"call_{next(ids)}", "type": "function", "function": function}
            calls.append(call)
        self.use("tool result")
        results = [
            {"role": "tool", "tool_call_id": call["id"], "content": self.text()}
            for call in calls
        ]
        self.rng.shuffle(results)
        return [self.assistant(calls), *results]

    def instructions(self) -> dict[str, Any]:
        role = self.rng.choice(["system", "developer"])
        return {"role": role, "content": self.text()}

    def messages(self, tool_names: list[str]) -> list[dict[str, Any]]:
        messages = [self.instructions() for _ in range(self.rng.choice([0, 0, 1, 2]))]
        ids = itertools.count(1)
        turns = self.rng.randint(1, 4)
        for turn in range(turns):
            if turn and self.chance(0.1):
                self.use("system message later")
                messages.append(self.instructions())
            user: dict[str, Any] = {"role": "user", "content": self.text()}
            if self.chance(0.1):
                self.use("content parts")
                user["content"] = [{"type": "text", "text": self.text()}] * 2
            messages.append(user)
            last = turn == turns - 1
            if last and self.chance(0.5):
                break
            for _ in range(self.rng.choice([0, 0, 1, 2])):
                messages += self.tool_round(tool_names, ids)
            if messages[-1]["role"] == "tool" and self.chance(0.7 if last else 0.3):
                # Unanswered: the last turn, or one the user interrupted.
                self.use("unfinished tool turn" if last else "interrupted tool turn")
                continue
            messages.append(self.assistant(None))
        if any(m["role"] in ("system", "developer") for m in messages):
            self.use("system message")
        answers = [m for m in messages if m["role"] == "assistant"]
        finished = sum(not m.get("tool_calls") for m in answers)
        if finished:
            self.use("several finished turns" if finished > 1 else "finished turn")
        return messages

    def request(self) -> dict[str, Any]:
        tools = self.tools() if self.chance(0.8) else []
        names = [t["function"]["name"] for t in tools] or TOOL_NAMES
        body: dict[str, Any] = {"model": "m", "messages": self.messages(names)}
        if tools:
            body["tools"] = tools
            if self.chance(0.1):
                self.use("tool_choice none")
                body["tool_choice"] = "none"
        effort = self.rng.choice([None, "low", "medium", "high"])
        if effort:
            body["reasoning_effort"] = effort
        return body


def completion_spec(generator: RequestGenerator) -> list[tuple[str, str | None, str]]:
    """A finished assistant turn as (channel, recipient, text) messages."""
    spec: list[tuple[str, str | None, str]] = []
    if generator.chance(0.7):
        spec.append(("analysis", None, generator.text()))
    calls = generator.rng.choice([0, 1, 1, 2])
    if calls and generator.chance(0.5):
        spec.append(("commentary", None, generator.text()))
    for _ in range(calls):
        name = generator.rng.choice(TOOL_NAMES)
        spec.append(("commentary", f"functions.{name}", generator.arguments()))
    if not calls:
        spec.append(("final", None, generator.text()))
    return spec
