"""The layout keeps its promises: packages layer one way, no import cycle, no module over 600 lines, and
every module says in its docstring what its one job is.

The import graph is read from the source (every ``import`` statement, including ones inside functions,
because a lazy import that closes a loop is still a loop), not from ``sys.modules``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reference_impl", "oracles", "property_tests", "reports", "benchmarks")
MAX_LINES = 600

# Lower layers never import higher ones.  The longest matching prefix gives a module its layer.
# Inside ``oracles``: the ground truths (and the registry, subject protocol, adapters) come first,
# verdicts judge with them, the diagnosis explains verdicts.
LAYERS: dict[str, int] = {
    "reference_impl": 0,
    "oracles": 1,
    "oracles.verdicts": 2,
    "oracles.diagnosis": 3,
    "property_tests": 4,
    "reports": 5,
    "benchmarks": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = project_modules()


def is_test_module(name: str) -> bool:
    """The test files sit on top of everything they test, so they may import from any layer."""
    last = name.rsplit(".", 1)[-1]
    return name.startswith("property_tests.") and (last.startswith("test_") or last == "conftest")


def imported_modules(name: str) -> Iterator[str]:
    """Project modules ``name`` imports (``from a.b import c`` counts ``a.b.c`` when that is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for target in imports_in_source(path.read_text(encoding="utf-8"), package):
        if target in MODULES and target != name:
            yield target


def imports_in_source(source: str, package: str) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``source`` may load (relative ones resolved)."""
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        yield from targets


def layer(name: str) -> int:
    best = max((prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def import_graph() -> dict[str, set[str]]:
    return {name: set(imported_modules(name)) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles() -> None:
    graph = import_graph()
    # A package's __init__ importing its own submodules is how a package exposes them, not a loop back.
    graph = {name: {t for t in targets if t not in package_parents(name)} for name, targets in graph.items()}
    assert cycles(graph) == []


def test_no_upward_imports() -> None:
    upward = [
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name, targets in import_graph().items()
        if not is_test_module(name)
        for target in sorted(targets)
        if layer(target) > layer(name)
    ]
    assert upward == []


def test_no_module_over_the_line_limit() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_library_module_states_its_job() -> None:
    silent = [
        name
        for name, path in MODULES.items()
        if not is_test_module(name) and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert silent == []


# --- the checks themselves bite ------------------------------------------------------------------------


def test_a_planted_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("reference_impl.mlp", "oracles.registry"),
        ("oracles.numeric.finite_diff", "oracles.verdicts.kinks"),
        ("oracles.verdicts.compare", "oracles.diagnosis.diagnose"),
        ("property_tests.strategies", "reports.records"),
    ],
)
def test_layers_are_ordered(low: str, high: str) -> None:
    assert layer(low) < layer(high)


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    source = "def late():\n    from reports.records import read_records\n\nfrom .sibling import thing\n"
    found = set(imports_in_source(source, "oracles.verdicts"))
    assert {"reports.records", "reports.records.read_records", "oracles.verdicts.sibling"} <= found
    assert "oracles.verdicts.compare" in import_graph()["property_tests.check"]
