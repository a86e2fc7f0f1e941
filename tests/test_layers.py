"""One layer per folder, imports only pointing down, no import cycle.

Every import of every module of `mlx_gen` counts: at the top, inside a
function (the lazy imports that keep `mlx-gen --help` fast) and under
`if TYPE_CHECKING:`. An import of a package counts as an import of its
`__init__`; `from package import module` as an import of that module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlx_gen"

# Lowest first: a module may import its own layer and the layers before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("mlx_gen.settings", "mlx_gen.errors", "mlx_gen.units", "mlx_gen.blas",
              "mlx_gen.hardware", "mlx_gen.hosts")),
    ("models", ("mlx_gen.models",)),
    ("engine", ("mlx_gen.engine",)),
    ("chat", ("mlx_gen.chat",)),  # its parsers decode with the engine's decoder
    ("server", ("mlx_gen.server",)),
    ("bench", ("mlx_gen.bench",)),
    ("cli", ("mlx_gen.cli", "mlx_gen.__main__")),
]  # fmt: skip


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {_owner(alias.name, known) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else _owner(base, known))
    return found - {"", name}


def _owner(dotted: str, known: dict[str, Path]) -> str:
    """The longest known module `dotted` names ("" for another package)."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer `module` belongs to."""
    if module == "mlx_gen":  # the package's empty __init__
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise LookupError(f"{module} belongs to no layer: add it to LAYERS")


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer."""
    found = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        for target in sorted(targets):
            if layer_of(target) > layer:
                names = LAYERS[layer][0], LAYERS[layer_of(target)][0]
                found.append(f"{module} ({names[0]}) imports {target} ({names[1]})")
    return found


def test_the_walk_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 80
    # At the top, inside a function, and under `if TYPE_CHECKING:`.
    assert "mlx_gen.models.registry" in graph["mlx_gen.models.loading"]
    assert (
        "mlx_gen.models.synthetic.mxfp4_q8" in graph["mlx_gen.models.synthetic.presets"]
    )
    assert "mlx_gen.engine.memory" in graph["mlx_gen.cli.convert"]
    # `from package import module`, absolute and relative.
    assert "mlx_gen.cli.bench_engine" in graph["mlx_gen.cli.bench"]
    assert "mlx_gen.chat.harmony" in graph["mlx_gen.chat"]


def test_every_module_belongs_to_a_layer():
    assert {layer_of(module) for module in import_graph()} == set(range(len(LAYERS)))


def test_no_import_cycle():
    assert [sorted(c) for c in cycles(import_graph())] == []


def test_imports_only_point_down():
    assert wrong_way(import_graph()) == []
