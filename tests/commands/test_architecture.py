"""The shape of the house (docs/architecture.md): no import cycles, small folders, short functions.

``lint-imports`` (run by ``make test``) checks that imports go one way between layers; these
check what layer contracts cannot see: cycles inside a layer, package ``__init__`` files that
would hold code their members import back, folders and functions grown too large.
"""
from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("spikeformer", "sim", "loihi_export")
MAX_MODULES_PER_FOLDER = 14
MAX_FUNCTION_LINES = 80
NUMBA_DECORATORS = ("jit", "overload", "intrinsic")


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_cycle_finder_finds_a_cycle_and_only_cycles():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_counting_every_import():
    """grimp reads every import: module level, inside functions, under TYPE_CHECKING."""
    graph = grimp.build_graph(*PACKAGES)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert import_cycles(edges) == []


def test_package_inits_hold_no_code():
    """A base class or registry never lives in a package ``__init__`` that its members import back."""
    def holds_code(path: Path) -> bool:
        body = ast.parse(path.read_text()).body
        docstring = body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
        return len(body) > len(docstring)

    full = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py") if holds_code(p)]
    assert full == []


def test_no_folder_holds_more_than_14_modules():
    crowded = {}
    for top in (*PACKAGES, "tests", "benchmarks", "tools"):
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(ROOT))] = len(modules)
    assert crowded == {}


def test_no_function_over_80_lines_outside_numba_kernels():
    long = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                lines = node.end_lineno - node.lineno + 1
                numba = any(k in ast.unparse(d) for d in node.decorator_list for k in NUMBA_DECORATORS)
                if lines > MAX_FUNCTION_LINES and not numba:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
