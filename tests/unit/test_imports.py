"""The static import graph of the project's modules has no cycle, and shared/ depends on nothing above it.

Every import counts, wherever it is: at the top, under ``if TYPE_CHECKING:`` and inside functions (a
function-local import only hides a cycle, it does not remove it). ``from package import name`` is an
edge to ``package.name`` when that is a module, else to ``package``; a package's ``__init__`` that a
submodule's import runs first is not counted as an edge (else every re-exporting package would be a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "clinic", "infra", "bench")
ABOVE_SHARED = ("services", "clinic", "infra", "bench")

Graph = Mapping[str, set[str]]


def project_modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(module: str, source: str, known: Iterable[str], *, is_package: bool = False) -> set[str]:
    """The project modules ``module`` imports anywhere in ``source``."""
    known = set(known)

    def nearest(name: str) -> str | None:  # the module itself, else the closest enclosing known module
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in known:
                return ".".join(parts[:end])
        return None

    package = module if is_package else module.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(nearest(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else nearest(base))
    return {target for target in targets if target is not None and target != module}


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {name: imported(name, path.read_text(), modules, is_package=path.name == "__init__.py") for name, path in modules.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one."""
    return [_cycle_in(component, graph) for component in tangles(graph)]


def tangles(graph: Graph) -> list[set[str]]:
    """The strongly connected components that hold a cycle (Tarjan): modules that all import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # recursive: the graph is a few hundred modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(graph.get(node, ())):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_in(component: set[str], graph: Graph) -> list[str]:
    """A shortest cycle through the component's first module, staying inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following_frontier = []
        for node in frontier:
            for following in sorted(graph.get(node, ())):
                if following == start:
                    return [*paths[node], start]
                if following in component and following not in paths:
                    paths[following] = [*paths[node], following]
                    following_frontier.append(following)
        frontier = following_frontier
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def upward(graph: Graph, package: str = "shared", above: Iterable[str] = ABOVE_SHARED) -> list[str]:
    above = tuple(above)
    return sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module == package or module.startswith(f"{package}.")
        for target in targets
        if target.split(".")[0] in above
    )


GRAPH = import_graph()


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_of_the_package_is_in_an_import_cycle(package):
    found = [tangle for tangle in tangles(GRAPH) if any(m == package or m.startswith(f"{package}.") for m in tangle)]
    assert not found, "import cycles:\n" + "\n".join(_describe(tangle) for tangle in found)


def _describe(tangle: set[str]) -> str:
    cycle = _cycle_in(tangle, GRAPH)
    rest = sorted(tangle - set(cycle))
    return " -> ".join(cycle) + (f" (and in the same tangle: {', '.join(rest)})" if rest else "")


def test_shared_imports_nothing_above_it():
    assert not upward(GRAPH), "shared/ must not depend on the services or the tools:\n" + "\n".join(upward(GRAPH))


def test_the_graph_sees_every_kind_of_import():
    assert {"shared.runtime.service", "services.aftercare.app", "clinic.cli", "bench.journeys"} <= GRAPH.keys()
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import pkg.a
from pkg import b
from pkg.c import thing
from . import d
from .e import other
if TYPE_CHECKING:
    from pkg.f import Typed

def later():
    import pkg.g.inner
"""
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.f", "pkg.g", "pkg.mod"}
    assert imported("pkg.mod", source, known) == {"pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.f", "pkg.g"}
    assert imported("pkg", "from .a import x\nfrom . import b\n", known, is_package=True) == {"pkg.a", "pkg.b"}


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    acyclic = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert cycles(acyclic) == []
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"g"}, "g": {"f"}}
    assert sorted(cycles(cyclic)) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]


def test_the_layering_check_names_an_upward_import():
    graph = {"shared.runtime": {"shared.store", "services.aftercare.app"}, "shared.store": set(), "clinic.cli": {"shared.runtime"}}
    assert upward(graph) == ["shared.runtime imports services.aftercare.app"]
