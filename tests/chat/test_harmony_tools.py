"""JSON Schema to harmony's TypeScript-like namespace: hand-written goldens.

Each golden is what openai-harmony 0.0.8 writes (the differential tests check
the same on generated schemas, token by token).
"""

from __future__ import annotations

import pytest

from mlx_gen.chat.harmony_tools import render_functions_namespace, typescript_type


def tool(name: str, description: str | None = None, parameters=None) -> dict:
    function: dict = {"name": name}
    if description is not None:
        function["description"] = description
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def test_namespace_of_tools_without_parameters() -> None:
    tools = [
        tool("get_location", "Gets the location of the user."),
        tool("ping", parameters={"type": "object", "properties": {}}),
    ]
    assert render_functions_namespace(tools) == (
        "## functions\n"
        "\n"
        "namespace functions {\n"
        "\n"
        "// Gets the location of the user.\n"
        "type get_location = () => any;\n"
        "\n"
        "type ping = () => any;\n"
        "\n"
        "} // namespace functions"
    )


def test_required_optional_defaults_enums_and_descriptions() -> None:
    weather = tool(
        "get_current_weather",
        "Gets the current weather in the provided location.",
        {
            "type": "object",
            "properties": {
                "location": {
                    "type": "string",
                    "description": "The city and state, e.g. San Francisco, CA",
                },
                "format": {
                    "type": "string",
                    "enum": ["celsius", "fahrenheit"],
                    "default": "celsius",
                },
                "days": {"type": "integer", "default": 1},
                "precision": {"type": "number", "description": "Decimals."},
                "hourly": {"type": "boolean", "default": False},
                "label": {"type": "string", "default": "now"},
            },
            "required": ["location", "precision"],
        },
    )
    assert render_functions_namespace([weather]) == (
        "## functions\n"
        "\n"
        "namespace functions {\n"
        "\n"
        "// Gets the current weather in the provided location.\n"
        "type get_current_weather = (_: {\n"
        "// The city and state, e.g. San Francisco, CA\n"
        "location: string,\n"
        'format?: "celsius" | "fahrenheit", // default: celsius\n'
        "days?: number, // default: 1\n"
        "// Decimals.\n"
        "precision: number,\n"
        "hourly?: boolean, // default: false\n"
        'label?: string, // default: "now"\n'
        "}) => any;\n"
        "\n"
        "} // namespace functions"
    )


def namespace_of(properties: dict, description: str = "") -> str:
    """The namespace of one tool `f` whose parameters hold `properties`."""
    parameters = {"type": "object", "properties": properties}
    return render_functions_namespace([tool("f", description, parameters)])


def body(lines: str) -> str:
    return (
        "## functions\n\nnamespace functions {\n\n"
        f"{lines}\n\n"
        "} // namespace functions"
    )


# The differences issue 12 found, each with openai-harmony's rendering.
@pytest.mark.parametrize(
    ("properties", "description", "expected"),
    [
        (
            {"u": {"type": "string", "description": "Unit "}},
            "",
            "type f = (_: {\n// Unit \nu?: string,\n}) => any;",
        ),
        (
            {"u": {"type": "string", "description": "First line.\nSecond line."}},
            "",
            "type f = (_: {\n// First line.\nSecond line.\nu?: string,\n}) => any;",
        ),
        (
            {"u": {"type": "string"}},
            "Runs it.\n\nMore.",
            "// Runs it.\n// \n// More.\ntype f = (_: {\nu?: string,\n}) => any;",
        ),
        (
            {"u": {"type": "string", "description": ""}},
            "",
            "type f = (_: {\n// \nu?: string,\n}) => any;",
        ),
        (
            {"u": {"type": "array"}},
            "",
            "type f = (_: {\nu?: Array<any>,\n}) => any;",
        ),
        (
            {"u": {"type": "integer", "enum": [1, 2, 3]}, "v": {"enum": ["a", "b"]}},
            "",
            "type f = (_: {\nu?: number,\nv?: any,\n}) => any;",
        ),
        (
            {"u": {"type": "string", "enum": ["ÜBER"], "default": "日本"}},
            "",
            'type f = (_: {\nu?: "ÜBER", // default: 日本\n}) => any;',
        ),
        (
            {"u": {"type": "object"}},
            "",
            "type f = (_: {\nu?: {\n    },\n}) => any;",
        ),
        (
            {"u": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "",
            "type f = (_: {\nu?: any,\n}) => any;",
        ),
        (
            {"u": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
            "",
            "type f = (_: {\nu?:\n | string\n | number\n,\n}) => any;",
        ),
        (
            {
                "u": {
                    "type": "object",
                    "description": "Where.",
                    "properties": {"city": {"type": "string"}},
                }
            },
            "",
            "type f = (_: {\n// Where.\nu?:     // Where.\n{\n    city?: string,\n"
            "    },\n}) => any;",
        ),
    ],
)
def test_the_differences_issue_12_found(
    properties: dict, description: str, expected: str
) -> None:
    assert namespace_of(properties, description) == body(expected)


def test_arrays_and_nested_objects() -> None:
    booking = {
        "guests": {
            "type": "array",
            "description": "Who is coming.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer", "description": "Years."},
                },
                "required": ["name"],
            },
        },
        "address": {
            "type": "object",
            "properties": {
                "geo": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}},
                    "required": ["lat"],
                },
            },
        },
        "tags": {"type": "array", "items": {"type": "string", "enum": ["s", "m"]}},
        "ids": {"type": "array", "items": {"type": ["integer", "string"]}},
    }
    assert namespace_of(booking) == body(
        "type f = (_: {\n"
        "// Who is coming.\n"
        "guests?: {\n"
        "    name: string,\n"
        "    // Years.\n"
        "    age?: number,\n"
        "    }[],\n"
        "address?: {\n"
        "    geo?: {\n"
        "        lat: number,\n"
        "        },\n"
        "    },\n"
        'tags?: "s" | "m"[],\n'
        "ids?: number | string[],\n"
        "}) => any;"
    )


def test_one_of_variants_with_descriptions_defaults_and_nulls() -> None:
    properties = {
        "when": {
            "description": "A date.",
            "default": "today",
            "oneOf": [
                {"type": "string", "description": "A date."},
                {"type": "integer", "description": "Days.", "default": 0},
                {"type": "boolean", "nullable": True},
            ],
        },
        "list": {"type": "array", "items": {"oneOf": [{"type": "string"}]}},
    }
    assert namespace_of(properties) == body(
        "type f = (_: {\n"
        '// default: "today"\n'
        "when?:\n"
        " | string\n"
        " | number // Days. default: 0\n"
        " | boolean | null\n"
        ",\n"
        "list?: \n"
        "     | string[],\n"
        "}) => any;"
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            {"type": "string", "default": 'say "hi"'},
            'u?: string, // default: "say "hi""',
        ),
        ({"type": "number", "default": 1e-05}, "u?: number, // default: 0.00001"),
        ({"type": "number", "default": 2.5e20}, "u?: number, // default: 2.5e20"),
        ({"type": "number", "default": 10**20}, "u?: number, // default: 1e20"),
        ({"type": "number", "default": 3.0}, "u?: number, // default: 3.0"),
        ({"type": "number", "default": 1e-7}, "u?: number, // default: 1e-7"),
        ({"type": "boolean", "default": False}, "u?: boolean, // default: false"),
        ({"default": None}, "u?: any, // default: null"),
        ({"default": {"k": ["é", 1.5]}}, 'u?: any, // default: {"k":["é",1.5]}'),
    ],
)
def test_defaults_are_written_as_the_library_writes_them(
    field: dict, expected: str
) -> None:
    assert namespace_of({"u": field}) == body(
        f"type f = (_: {{\n{expected}\n}}) => any;"
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "number"),
        ({"type": "number", "enum": [1.5]}, "number"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "null"}, "any"),
        ({"type": "string", "enum": ['say "hi"', 3]}, '"say "hi""'),
        ({"type": "string", "enum": []}, "string"),
        ({"const": "fixed"}, "any"),
        ({"type": ["string", "null"]}, "string | null"),
        ({"type": ["object", "integer"]}, "object | number"),
        ({"type": []}, "any"),
        ({"allOf": [{"type": "string"}]}, "any"),
        ({"$ref": "#/$defs/Thing"}, "any"),
        ({"type": "array", "items": True}, "any[]"),
        ({}, "any"),
        ("not a schema", "any"),
    ],
)
def test_scalar_and_union_types(schema: object, expected: str) -> None:
    assert typescript_type(schema) == expected


def test_malformed_schema_parts_are_skipped_as_the_library_skips_them() -> None:
    parameters = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": "not a schema"},
        "required": [["a"], {"b": 1}, "a"],
    }
    assert render_functions_namespace([tool("f", parameters=parameters)]) == body(
        "type f = (_: {\na: string,\nb?: any,\n}) => any;"
    )


def test_tool_without_a_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name"):
        render_functions_namespace([{"type": "function", "function": {}}])
