"""JSON Schema to harmony's TypeScript-like namespace: hand-written goldens."""

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


def test_arrays_and_nested_objects() -> None:
    booking = tool(
        "book",
        "Books rooms.\nCharges the card on file.",
        {
            "type": "object",
            "properties": {
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
                        "street": {"type": "string"},
                        "geo": {
                            "type": "object",
                            "properties": {"lat": {"type": "number"}},
                            "required": ["lat"],
                        },
                    },
                    "required": ["street"],
                },
                "tags": {"type": "array", "items": {"type": "string"}},
                "sizes": {"type": "array", "items": {"enum": ["s", "m"]}},
                "extras": {"type": "array"},
            },
            "required": ["guests"],
        },
    )
    assert render_functions_namespace([booking]) == (
        "## functions\n"
        "\n"
        "namespace functions {\n"
        "\n"
        "// Books rooms.\n"
        "// Charges the card on file.\n"
        "type book = (_: {\n"
        "// Who is coming.\n"
        "guests: {\n"
        "    name: string,\n"
        "    // Years.\n"
        "    age?: number,\n"
        "    }[],\n"
        "address?: {\n"
        "    street: string,\n"
        "    geo?: {\n"
        "        lat: number,\n"
        "        },\n"
        "    },\n"
        "tags?: string[],\n"
        'sizes?: ("s" | "m")[],\n'
        "extras?: any[],\n"
        "}) => any;\n"
        "\n"
        "} // namespace functions"
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "number"),
        ({"type": "number"}, "number"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "null"}, "null"),
        ({"type": "integer", "enum": [1, 2, 3]}, "1 | 2 | 3"),
        ({"enum": ['say "hi"']}, '"say \\"hi\\""'),
        ({"const": "fixed"}, '"fixed"'),
        ({"type": ["string", "null"]}, "string | null"),
        ({"type": "string", "nullable": True}, "string | null"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "string | null"),
        ({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}, "number | boolean"),
        ({"type": "object"}, "object"),
        ({}, "any"),
        ("not a schema", "any"),
    ],
)
def test_scalar_and_union_types(schema: object, expected: str) -> None:
    assert typescript_type(schema) == expected


def test_tool_without_a_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name"):
        render_functions_namespace([{"type": "function", "function": {}}])


def test_local_references_are_written_out_in_place() -> None:
    parameters = {
        "type": "object",
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "Node": {
                "type": "object",
                "properties": {
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                },
            },
        },
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where they live."},
            "tree": {"allOf": [{"$ref": "#/$defs/Node"}]},
            "elsewhere": {"$ref": "https://example.com/schema.json"},
        },
        "required": ["home"],
    }
    assert render_functions_namespace([tool("save", parameters=parameters)]) == (
        "## functions\n"
        "\n"
        "namespace functions {\n"
        "\n"
        "type save = (_: {\n"
        "// Where they live.\n"
        "home: {\n"
        "    city: string,\n"
        "    },\n"
        "tree?: {\n"
        "    children?: any[],\n"
        "    },\n"
        "elsewhere?: any,\n"
        "}) => any;\n"
        "\n"
        "} // namespace functions"
    )
