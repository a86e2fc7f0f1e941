"""Function tools as harmony declares them: a TypeScript-like `functions` namespace.

GPT-OSS was trained on what OpenAI's `openai-harmony` (0.0.8) writes for a
JSON Schema, so this module writes exactly that, quirks included (the
differential tests in tests/chat compare it token by token): descriptions,
titles and examples are `// ` comments written as given (a multi-line text
goes on raw after its first line); an object's own description is written
again before its `{`; `integer` is `number` and only string enums are
literals; `anyOf`, `allOf`, `const`, `$ref` and type-less schemas are `any`;
`oneOf` puts one variant per line; defaults follow the type after
`// default:`, strings quoted but unescaped, other values as compact JSON.

One departure from the library, as harmony's documentation has it: a tool
whose parameters have no properties is `() => any`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlx_gen.chat.base import Tool

NESTED_INDENT = "    "
VARIANT_INDENT = "   "
# serde_json reads integers outside these bounds as floats.
_JSON_INT_RANGE = (-(1 << 63), 1 << 64)


def render_functions_namespace(tools: list[Tool]) -> str:
    """The `## functions` section of the developer message."""
    lines = ["## functions", "", "namespace functions {", ""]
    for tool in tools:
        function = function_of(tool)
        description = function.get("description")
        if isinstance(description, str):
            lines += [f"// {line}" for line in text_lines(description)]
        parameters = function.get("parameters")
        if _has_properties(parameters):
            signature = f"(_: {typescript_type(parameters)})"
        else:
            signature = "()"
        lines += [f"type {function['name']} = {signature} => any;", ""]
    lines.append("} // namespace functions")
    return "\n".join(lines)


def function_of(tool: Tool) -> dict[str, Any]:
    """The function of a chat-completions tool, or a flat Responses-API tool itself."""
    function = tool.get("function", tool)
    if not isinstance(function, dict) or not function.get("name"):
        raise ValueError("every tool needs a function with a name")
    return function


def text_lines(text: str) -> list[str]:
    """Lines as Rust's `str::lines` gives them: split at LF or CRLF, nothing else."""
    lines = text.split("\n")
    last = lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    return [*lines, last] if last else lines


def typescript_type(schema: Any, indent: str = "") -> str:
    """The TypeScript-like type of a JSON Schema (`indent`: of nested fields)."""
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("oneOf"), list):
        return "".join(
            f"\n{indent} | {_variant(variant, indent, quote_enum_defaults=True)}"
            for variant in schema["oneOf"]
        )
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if k == "integer" else k for k in kind if isinstance(k, str)]
        return " | ".join(names) or "any"
    if kind == "object":
        return _object_type(schema, indent)
    if kind == "string":
        values = schema.get("enum")
        values = values if isinstance(values, list) else []
        return " | ".join(f'"{v}"' for v in values if isinstance(v, str)) or "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        if "items" not in schema:
            return "Array<any>"
        return typescript_type(schema["items"], indent) + "[]"
    return "any"


def _object_type(schema: dict[str, Any], indent: str) -> str:
    parts = []
    if isinstance(schema.get("description"), str):
        parts.append(f"{indent}// {schema['description']}\n")
    parts.append("{\n")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        listed = schema.get("required")
        listed = listed if isinstance(listed, list) else []
        required = {name for name in listed if isinstance(name, str)}
        for key, field in properties.items():
            field = field if isinstance(field, dict) else {}
            mark = "" if key in required else "?"
            parts.append(_property(f"{key}{mark}", field, indent))
    parts.append(f"{indent}}}")
    return "".join(parts)


def _property(name: str, field: dict[str, Any], indent: str) -> str:
    comments = ""
    if isinstance(field.get("title"), str):
        comments += f"{indent}// {field['title']}\n{indent}//\n"
    if "oneOf" not in field and isinstance(field.get("description"), str):
        comments += f"{indent}// {field['description']}\n"
    examples = field.get("examples")
    if isinstance(examples, list) and examples:
        comments += f"{indent}// Examples:\n"
        comments += "".join(
            f'{indent}// - "{e}"\n' for e in examples if isinstance(e, str)
        )
    if isinstance(field.get("oneOf"), list):
        return comments + _one_of_property(name, field, indent)
    field_type = _nullable(field, typescript_type(field, indent + NESTED_INDENT))
    line = f"{indent}{name}: {field_type},"
    if "oneOf" not in field and "default" in field:
        line += f" // default: {_default(field, quote_enum_defaults=False)}"
    return f"{comments}{line}\n"


def _one_of_property(name: str, field: dict[str, Any], indent: str) -> str:
    """A `oneOf` field: its variants one per line, under the field's name."""
    variants = field["oneOf"]
    description = field.get("description")
    description = description if isinstance(description, str) else None
    first = variants[0] if variants and isinstance(variants[0], dict) else {}
    # The field's description, unless its first variant says the same.
    above = description is not None and first.get("description") != description
    lines = [f"{indent}// {description}\n"] if above else []
    if "default" in field:
        default = _default(field, quote_enum_defaults=False)
        lines.append(f"{indent}// default: {default}\n")
    lines.append(f"{indent}{name}:\n")
    for i, variant in enumerate(variants):
        skip = description if i > 0 or not above else True
        text = _variant(variant, indent, quote_enum_defaults=False, skip=skip)
        lines.append(f"{indent} | {text}\n")
    lines.append(f"{indent},\n")
    return "".join(lines)


def _variant(
    variant: Any, indent: str, quote_enum_defaults: bool, skip: Any = None
) -> str:
    """One `oneOf` variant's type and its trailing `// description default:`.

    `skip`: a description not to repeat (True: none at all).
    """
    text = typescript_type(variant, indent + VARIANT_INDENT)
    variant = variant if isinstance(variant, dict) else {}
    text = _nullable(variant, text)
    comments = []
    description = variant.get("description")
    if isinstance(description, str) and skip is not True and description != skip:
        comments.append(description)
    if "default" in variant:
        comments.append(f"default: {_default(variant, quote_enum_defaults)}")
    return f"{text} // {' '.join(comments)}" if comments else text


def _nullable(field: dict[str, Any], text: str) -> str:
    if field.get("nullable") is True and "null" not in text:
        return f"{text} | null"
    return text


def _default(field: dict[str, Any], quote_enum_defaults: bool) -> str:
    """A default as the library writes it: strings quoted unescaped, enum ones bare."""
    value = field["default"]
    if isinstance(value, str):
        enum = field.get("enum")
        if not (isinstance(enum, list) and enum):
            return f'"{value}"'
        if not quote_enum_defaults:
            return value
    return json_text(value)


def json_text(value: Any) -> str:
    """Compact JSON as serde_json writes it: text unescaped beyond JSON's needs."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        low, high = _JSON_INT_RANGE
        return str(value) if low <= value < high else _float_text(float(value))
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        members = (f"{json_text(str(k))}:{json_text(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _float_text(value: float) -> str:
    """A float as Rust's ryu writes it: `1e20`, `1e-7`, `0.0001`, `1.0`."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))
    point = len(digits) + exponent  # where the decimal point falls in the digits
    if exponent >= 0 and point <= 16:
        return f"{sign}{digits}{'0' * exponent}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    mantissa = digits if len(digits) == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{point - 1}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest digits that read back as `value`, and their power of ten."""
    mantissa, _, power = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(power or 0) - len(fraction)
    stripped = digits.rstrip("0")
    return stripped, exponent + len(digits) - len(stripped)


def _has_properties(parameters: Any) -> bool:
    if not isinstance(parameters, dict):
        return False
    properties = parameters.get("properties")
    return isinstance(properties, dict) and bool(properties)
