"""Function tools as harmony declares them: a TypeScript-like `functions` namespace.

GPT-OSS was trained on one rendering of JSON Schema, so the common cases
follow its layout to the character: comment lines above fields, `?` for
optional ones, `// default:` after the type, nested objects indented four
spaces with their closing brace at that indentation. Rarer constructs
(unions, references) are written the plainest TypeScript way.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from mlx_gen.chat.base import Tool

NESTED_INDENT = "    "
# Definitions that use each other twice double at every level when written
# out: past this many parts a schema is refused, not expanded without end.
MAX_INLINED_PARTS = 20_000


def render_functions_namespace(tools: list[Tool]) -> str:
    """The `## functions` section of the developer message."""
    lines = ["## functions", "", "namespace functions {", ""]
    for tool in tools:
        function = function_of(tool)
        lines += _comments(function.get("description"), "")
        name = function["name"]
        parameters = _inline_refs(function.get("parameters"))
        if _has_properties(parameters):
            signature = f"(_: {_object_type(parameters, '')})"
        else:
            signature = "()"
        lines += [f"type {name} = {signature} => any;", ""]
    lines.append("} // namespace functions")
    return "\n".join(lines)


def function_of(tool: Tool) -> dict[str, Any]:
    """The function of a chat-completions tool, or a flat Responses-API tool itself."""
    function = tool.get("function", tool)
    if not isinstance(function, dict) or not function.get("name"):
        raise ValueError("every tool needs a function with a name")
    return function


def typescript_type(schema: Any, indent: str = "") -> str:
    """The TypeScript-like type of a JSON Schema (`indent`: of nested fields)."""
    if not isinstance(schema, dict):
        return "any"
    rendered = _bare_type(schema, indent)
    if schema.get("nullable") is True and "null" not in rendered.split(" | "):
        rendered += " | null"
    return rendered


def _bare_type(schema: dict[str, Any], indent: str) -> str:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key, joint in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
        if isinstance(schema.get(key), list) and schema[key]:
            return joint.join(typescript_type(v, indent) for v in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_scalar(k) for k in kind) or "any"
    if kind == "object" or (kind is None and "properties" in schema):
        return _object_type(schema, indent) if _has_properties(schema) else "object"
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return "any[]"
        item = typescript_type(items, indent)
        union = " | " in item and not item.startswith("{")
        return f"({item})[]" if union else f"{item}[]"
    return _scalar(kind)


def _scalar(kind: Any) -> str:
    if kind == "integer":
        return "number"
    if kind in ("string", "number", "boolean", "null"):
        return kind
    return "any"


def _object_type(schema: dict[str, Any], indent: str) -> str:
    required = set(schema.get("required") or [])
    lines = ["{"]
    for key, field in schema["properties"].items():
        field = field if isinstance(field, dict) else {}
        lines += _comments(field.get("description"), indent)
        optional = "" if key in required else "?"
        field_type = typescript_type(field, indent + NESTED_INDENT)
        line = f"{indent}{key}{optional}: {field_type},"
        if "default" in field:
            line += f" // default: {_default(field)}"
        lines.append(line)
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def _default(field: dict[str, Any]) -> str:
    value = field["default"]
    if isinstance(value, str):
        # An enum's default names one of the listed literals: shown bare.
        return value if "enum" in field else json.dumps(value)
    return json.dumps(value, separators=(",", ":"))


def _comments(text: Any, indent: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        return []
    return [f"{indent}// {line}".rstrip() for line in text.strip().splitlines()]


def _has_properties(schema: Any) -> bool:
    return isinstance(schema, dict) and bool(schema.get("properties"))


def _inline_refs(schema: Any) -> Any:
    """The schema with its local `$ref`s replaced by their definitions.

    SDKs describe nested models as `$defs` and `$ref`s, which the model reads
    best written out in place. A definition inside itself becomes `any`.
    """
    if not isinstance(schema, dict):
        return schema
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    inlined = _inline(schema, definitions, (), itertools.count())
    inlined.pop("$defs", None)
    inlined.pop("definitions", None)
    return inlined


def _inline(
    node: Any, definitions: dict[str, Any], expanding: tuple, parts: Iterator[int]
) -> Any:
    if next(parts) > MAX_INLINED_PARTS:
        raise ValueError(
            "a tool's parameters schema is too large once its $refs are written "
            f"out (over {MAX_INLINED_PARTS} parts)"
        )
    if isinstance(node, list):
        return [_inline(item, definitions, expanding, parts) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    rest = {
        k: _inline(v, definitions, expanding, parts)
        for k, v in node.items()
        if k != "$ref"
    }
    if not isinstance(ref, str):
        return rest
    name = ref.rsplit("/", 1)[-1]
    local = ref.startswith(("#/$defs/", "#/definitions/"))
    if not local or name in expanding or name not in definitions:
        return rest
    target = _inline(definitions[name], definitions, (*expanding, name), parts)
    return {**target, **rest} if isinstance(target, dict) else rest
