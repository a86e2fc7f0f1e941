"""Request fields of structured output: OpenAI's `response_format`.

Only the shape is checked here; whether the library can compile a schema is
decided by server/structured.py, which answers 400 naming the problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_SCHEMA_DEPTH = 64


def json_depth(value: Any) -> int:
    """How deep lists and objects nest in a JSON value (iteratively)."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            pending += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            pending += [(v, depth + 1) for v in item]
    return deepest


def check_schema_depth(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    # Renderers and compilers walk a schema recursively: bound the stack.
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"nested more than {MAX_SCHEMA_DEPTH} levels deep")
    return schema


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    description: str | None = Field(None, max_length=65_536)
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")
    # Always followed exactly: strict or not, the output matches the schema.
    strict: bool | None = None

    _depth = field_validator("json_schema")(check_schema_depth)


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is given with type 'json_schema', only")
        return self

    def answer_schema(self) -> dict[str, Any] | None:
        """The JSON schema the answer follows; None for free text."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.json_schema is not None:
            return self.json_schema.json_schema
        return None


class GuidedFields(BaseModel):
    """vLLM's extensions: the answer matches a regex, or is one of a list."""

    guided_regex: str | None = Field(None, min_length=1, max_length=4096)
    guided_choice: list[Annotated[str, Field(min_length=1, max_length=1024)]] | None = (
        Field(None, min_length=1, max_length=256)
    )
