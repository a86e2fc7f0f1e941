"""JSON schemas of every kind, each bounded so that a random model, which
only the constraint keeps in line, finishes well within a small max_tokens."""

from __future__ import annotations

from typing import Any


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


WORD = {"type": "string", "maxLength": 6}
DIGIT = {"type": "integer", "minimum": 0, "maximum": 9}

SCHEMAS: dict[str, dict[str, Any]] = {
    "flat": obj(
        {"name": WORD, "age": {"type": "integer", "minimum": 0, "maximum": 120}}
    ),
    "nested": obj({"user": obj({"id": DIGIT, "profile": obj({"nick": WORD})})}),
    "array_bounds": obj(
        {"tags": {"type": "array", "items": WORD, "minItems": 1, "maxItems": 3}}
    ),
    "array_of_objects": obj(
        {
            "points": {
                "type": "array",
                "items": obj({"x": DIGIT, "y": DIGIT}),
                "minItems": 2,
                "maxItems": 2,
            }
        }
    ),
    "string_enum": obj({"color": {"enum": ["red", "green", "blue"]}}),
    "mixed_enum": obj({"value": {"enum": [1, "two", None, True]}}),
    "any_of": obj(
        {"id": {"anyOf": [DIGIT, {"type": "string", "pattern": "^[a-z]{2,4}$"}]}}
    ),
    "integer_range": obj({"temp": {"type": "integer", "minimum": -40, "maximum": 50}}),
    "exclusive_range": obj(
        {"n": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 20}}
    ),
    "pattern": obj({"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}}),
    "max_length": obj({"note": {"type": "string", "minLength": 2, "maxLength": 4}}),
    "optional": obj({"a": DIGIT, "b": WORD, "c": {"type": "boolean"}}, ["a"]),
    "refs": {
        "$defs": {"point": obj({"x": DIGIT, "y": DIGIT})},
        **obj({"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}}),
    },
    "const_bool_null": obj(
        {
            "kind": {"const": "fixed"},
            "ok": {"type": "boolean"},
            "none": {"type": "null"},
        }
    ),
    "nullable": obj(
        {"maybe": {"type": ["integer", "null"], "minimum": 0, "maximum": 5}}
    ),
    "top_level_array": {"type": "array", "items": DIGIT, "minItems": 1, "maxItems": 4},
    "one_of": obj(
        {
            "shape": {
                "oneOf": [
                    obj({"circle": DIGIT}),
                    obj({"square": {"enum": ["s", "m", "l"]}}),
                ]
            }
        }
    ),
}
