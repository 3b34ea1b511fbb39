"""The intra-package import graph of fastconv has no cycle at module scope.

Every module of the installed package (found through ``fastconv.__file__``,
so the test also runs outside the checkout) is parsed with :mod:`ast`; the
imports that run when the module is imported are collected:

* statements at module scope, including those nested in ``if``/``try``/
  ``with`` blocks and class bodies (they run at import time too);
* not the bodies of functions (they run later, when called: a deferred
  import is the usual way to break a cycle);
* not ``if TYPE_CHECKING:`` blocks (only the type checker runs them).

An edge ``a -> b`` is drawn for ``import fastconv.b``, ``from . import b``,
``from .b import name`` and ``from fastconv.b import name`` (relative imports
resolved against the importing module's package; ``from . import name``
where ``name`` is a submodule is an edge to that submodule, otherwise to the
package itself).  A submodule's implicit import of its parent package is not
an edge: the parent is already in ``sys.modules`` by then.
"""
from __future__ import annotations

import ast
import importlib.machinery
import os

import fastconv

PACKAGE = "fastconv"
ROOT = os.path.dirname(os.path.abspath(fastconv.__file__))


def _modules() -> dict[str, str]:
    """Module name -> source path, for every .py file of the package.

    Compiled extension modules (``_ext``) are in it too, with an empty path:
    ``from . import _ext`` is an edge to a leaf, not to the package.
    """
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(folder, ROOT)
        parts = [PACKAGE] + ([] if rel == "." else rel.split(os.sep))
        if "__init__.py" not in files:
            continue
        for name in sorted(files):
            ext = next((s for s in importlib.machinery.EXTENSION_SUFFIXES
                        if name.endswith(s)), None)
            if ext is not None:
                found[".".join(parts + [name[: -len(ext)]])] = ""
                continue
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            mod = ".".join(parts if stem == "__init__" else parts + [stem])
            found[mod] = os.path.join(folder, name)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_nodes(body: list[ast.stmt]):
    """Import statements that run when the module body runs."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.ClassDef):
            yield from _import_time_nodes(node.body)
        else:
            for field in ("body", "orelse", "finalbody"):
                yield from _import_time_nodes(getattr(node, field, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                yield from _import_time_nodes(handler.body)
            for case in getattr(node, "cases", []) or []:
                yield from _import_time_nodes(case.body)


def _graph(modules: dict[str, str]) -> dict[str, dict[str, int]]:
    """Module -> {imported intra-package module: line of the first import}."""
    graph: dict[str, dict[str, int]] = {}
    for mod, path in modules.items():
        if not path:                     # a compiled extension: no imports seen
            graph[mod] = {}
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        is_pkg = os.path.basename(path) == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        edges: dict[str, int] = {}

        def add(target: str, line: int) -> None:
            if target != mod and target in modules:
                edges.setdefault(target, line)

        for node in _import_time_nodes(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        add(alias.name, node.lineno)
                continue
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                if node.module:
                    base = f"{base}.{node.module}"
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node.lineno)
        graph[mod] = edges
    return graph


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative DFS, sorted order)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour[child] == GREY:
                return path[path.index(child):] + [child]
            elif colour[child] == WHITE:
                colour[child] = GREY
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_package_modules_found():
    modules = _modules()
    assert PACKAGE in modules and f"{PACKAGE}.functional" in modules
    assert f"{PACKAGE}.compat.cs231n" in modules
    assert modules.get(f"{PACKAGE}._ext") == "", "the compiled extension was not found"


def test_graph_sees_known_edges():
    # Guards the parser: these imports exist at module scope today.
    graph = _graph(_modules())
    assert f"{PACKAGE}.functional" in graph[f"{PACKAGE}.layers"]
    assert f"{PACKAGE}._validation" in graph[f"{PACKAGE}.compat.cs231n"]
    assert f"{PACKAGE}.compat.cs231n" in graph[f"{PACKAGE}.compat"]
    assert f"{PACKAGE}._ext" in graph[f"{PACKAGE}._config"]


def test_no_import_cycle_at_module_scope():
    graph = _graph(_modules())
    cycle = _find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} -> {b} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("module-scope import cycle: " + "; ".join(steps))
