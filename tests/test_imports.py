"""Imports inside fastconv: no cycle at module scope, no private name taken
from another module, and what modules share is declared in ``__all__``.

Every module of the installed package (found through ``fastconv.__file__``,
so the test also runs outside the checkout) is parsed with :mod:`ast`.  The
rules of the private-name and ``__all__`` checks (and the compiled
extension's exemption) are given further down, with the checks.

For the cycle check, the imports that run when the module is imported are
collected:

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


# ---------------------------------------------------------------------------
# No private name taken from another module
# ---------------------------------------------------------------------------
#
# A module of fastconv may use another fastconv module's public names only.
# A helper that several modules share is public (no underscore) in the
# module that defines it and listed in that module's ``__all__``; the module
# itself may stay private (``fastconv._validation``: private to the package,
# public within it, as ``sklearn.utils.validation`` is to scikit-learn).  A
# name with a leading underscore belongs to its own module alone.
#
# Two ways of taking a name are checked, wherever they occur in a module
# (module scope or inside a function):
#
# * ``from .x import _name`` (relative or absolute; importing a private
#   *module*, ``from . import _ext``, is fine);
# * ``alias._name`` where ``alias`` is bound by an import to a fastconv
#   module (``from . import _validation as _v`` then ``_v._is_int``), also
#   through a chain of submodules (``fastconv._validation._is_int``).
#
# Dunder names (``__file__``, ``__version__``) are not private.  Attributes of
# objects (``layer._cache``) are not module names and are not checked.  Import
# bindings are collected for the whole module, without scopes: a local
# variable that reuses a module alias's name would be read as the module.
#
# Further, every public name that a module takes from another is listed in
# that module's ``__all__``, and a private module (``fastconv._x``) has one
# ``__all__`` that lists exactly the public names it defines.  (Public modules
# such as ``functional``, ``reference`` and ``layers`` also write theirs once,
# at the top, grouped by op family; their ``__all__`` is the user-facing API,
# which tests/test_build.py and tests/test_fuzz.py check further.)
#
# The compiled extension ``fastconv._ext`` is exempt: its functions are the
# package's C interface, named after the kernels they wrap, and the one
# underscore name the package calls there, ``_ext._init_gemm``, is the
# one-time set-up that ``fastconv/__init__.py`` runs at import (see
# src_c/README.md, "Run-time dispatch").  The checker cannot read a compiled
# module's source anyway; every module with a ``.py`` source is checked.


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _names_taken(source: str, mod: str, modules: dict[str, str],
                 is_pkg: bool = False) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` for each name that module ``mod`` takes from
    another fastconv module ``module``.

    ``source`` is the text of ``mod`` (``is_pkg`` for an ``__init__.py``);
    ``modules`` maps every module of the package to its source path.  A name
    that is itself a submodule is not a name taken (it is followed instead:
    ``fastconv._validation.check_flag`` takes ``check_flag``).
    """
    tree = ast.parse(source)
    package = mod if is_pkg else mod.rpartition(".")[0]
    aliases: dict[str, str] = {}     # local name -> fastconv module it is bound to
    taken: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
                    continue
                if alias.asname:
                    aliases[alias.asname] = name
                else:                           # `import fastconv.x` binds `fastconv`
                    aliases[PACKAGE] = PACKAGE
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                if node.module:
                    base = f"{base}.{node.module}"
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:               # a submodule, bound to a name
                    aliases[alias.asname or alias.name] = sub
                elif alias.name != "*":
                    taken.append((node.lineno, base, alias.name))

    def module_of(expr: ast.expr) -> str | None:
        """The fastconv module an expression names, or None."""
        if isinstance(expr, ast.Name):
            return aliases.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = module_of(expr.value)
            if base is not None and f"{base}.{expr.attr}" in modules:
                return f"{base}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = module_of(node.value)
            if owner is not None and f"{owner}.{node.attr}" not in modules:
                taken.append((node.lineno, owner, node.attr))
    return sorted(t for t in set(taken) if t[1] != mod)


def _private_uses(source: str, mod: str, modules: dict[str, str],
                  is_pkg: bool = False) -> list[str]:
    """``"line N: module.name"`` for each private name ``mod`` takes from
    another module with a Python source (compiled extensions are exempt)."""
    return [f"line {line}: {target}.{name}"
            for line, target, name in _names_taken(source, mod, modules, is_pkg)
            if _is_private(name) and modules.get(target)]


def _static_all(tree: ast.Module) -> tuple[list[str] | None, int]:
    """A module's ``__all__`` as written at its top level (``__all__ = [...]``
    and any ``__all__ += [...]``), and how many statements build it; None
    when it has none."""
    names: list[str] | None = None
    count = 0
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            names, count = list(ast.literal_eval(node.value)), count + 1
        elif (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)
                and node.target.id == "__all__"):
            names = (names or []) + list(ast.literal_eval(node.value))
            count += 1
    return names, count


def _defined_names(tree: ast.Module) -> list[str]:
    """Names a module defines at its top level (functions, classes,
    assignments; not imports)."""
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _is_private_module(mod: str) -> bool:
    return _is_private(mod.rpartition(".")[2])


def _parsed(modules: dict[str, str]) -> dict[str, tuple[ast.Module, str, bool]]:
    """Module -> (tree, source, is_pkg) for every module with a .py source."""
    out = {}
    for mod, path in modules.items():
        if path:
            with open(path, encoding="utf-8") as f:
                source = f.read()
            out[mod] = (ast.parse(source, filename=path), source,
                        os.path.basename(path) == "__init__.py")
    return out


def _names_not_in_all(parsed, modules) -> list[str]:
    """``"a line N: b.name"`` for each public name that module a takes from a
    module b (with a .py source) whose ``__all__`` does not list it."""
    alls = {mod: _static_all(tree)[0] for mod, (tree, _, _) in parsed.items()}
    found = []
    for mod, (_, source, is_pkg) in sorted(parsed.items()):
        for line, target, name in _names_taken(source, mod, modules, is_pkg):
            if name.startswith("_") or target not in parsed:
                continue                 # private (checked apart), dunder, extension
            if name not in (alls[target] or ()):
                found.append(f"{mod} line {line}: {target}.{name}")
    return found


def test_no_private_name_taken_from_another_module():
    modules = _modules()
    found = []
    for mod, (_, source, is_pkg) in sorted(_parsed(modules).items()):
        found += [f"{mod} {use}" for use in _private_uses(source, mod, modules, is_pkg)]
    assert not found, (
        "private names taken from another fastconv module (make the helper "
        "public in its module and list it in that module's __all__, or move "
        "it):\n  " + "\n  ".join(found))


def test_names_shared_between_modules_are_in_all():
    # A public name that one module takes from another is listed in the
    # other's __all__: the within-package interface is declared, not
    # guessed (dunder names such as __version__ aside).
    modules = _modules()
    found = _names_not_in_all(_parsed(modules), modules)
    assert not found, (
        "names taken from another fastconv module but missing from its "
        "__all__:\n  " + "\n  ".join(found))


def test_private_modules_declare_their_public_names():
    # A private module (fastconv._validation, fastconv._convplan, ...) has
    # one __all__ at its top level, listing exactly the public names it
    # defines: the names other modules may use.  Every name listed exists
    # in the imported module.
    import importlib

    modules = _modules()
    problems = []
    for mod, (tree, _, _) in sorted(_parsed(modules).items()):
        if not _is_private_module(mod):
            continue
        public = {n for n in _defined_names(tree) if not n.startswith("_")}
        listed, count = _static_all(tree)
        if not public and listed is None:
            continue                      # e.g. _version: only __version__
        if count != 1:
            problems.append(f"{mod}: {count} statements build __all__ (want one)")
            continue
        if set(listed) != public or len(listed) != len(set(listed)):
            problems.append(
                f"{mod}: __all__ misses {sorted(public - set(listed))}, lists "
                f"undefined {sorted(set(listed) - public)} or repeats a name")
        missing = [n for n in listed if not hasattr(importlib.import_module(mod), n)]
        if missing:
            problems.append(f"{mod}: __all__ names missing at run time: {missing}")
    assert not problems, "\n".join(problems)


def test_each_all_is_one_statement_at_the_top():
    # Every module's __all__, public modules' included, is one statement
    # above the module's first function or class: never `__all__ +=`
    # blocks appended section by section further down.
    problems = []
    for mod, (tree, _, _) in sorted(_parsed(_modules()).items()):
        listed, count = _static_all(tree)
        if listed is None:
            continue
        if count != 1:
            problems.append(f"{mod}: {count} statements build __all__ (want one)")
        defs = [n.lineno for n in tree.body if isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        line = next(n.lineno for n in tree.body if isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets))
        if defs and min(defs) < line:
            problems.append(f"{mod}: __all__ (line {line}) comes after a "
                            f"definition (line {min(defs)})")
    assert not problems, "\n".join(problems)


# The checkers on small synthetic packages: they must see what they claim to.

_FAKE = {
    PACKAGE: "/fake/__init__.py",
    f"{PACKAGE}._validation": "/fake/_validation.py",
    f"{PACKAGE}.layers": "/fake/layers.py",
    f"{PACKAGE}._ext": "",                       # a compiled extension
    f"{PACKAGE}.compat": "/fake/compat/__init__.py",
    f"{PACKAGE}.compat.cs231n": "/fake/compat/cs231n.py",
}


def test_private_checker_flags_every_form():
    source = (
        "import fastconv\n"
        "import fastconv._validation as V\n"
        "from .. import _validation as _v, layers\n"
        "from .._validation import _hidden, visible\n"
        "from fastconv.layers import _LPPoolNd as Pool\n"
        "from .. import _ext\n"
        "\n"
        "def f(obj):\n"
        "    from ..layers import _local_only\n"
        "    return (_v._is_int(1), V._out_size, fastconv._validation._pair,\n"
        "            layers._as_rng, fastconv.layers._positive_int)\n"
    )
    found = _private_uses(source, f"{PACKAGE}.compat.cs231n", _FAKE)
    assert found == [
        f"line 4: {PACKAGE}._validation._hidden",
        f"line 5: {PACKAGE}.layers._LPPoolNd",
        f"line 9: {PACKAGE}.layers._local_only",
        f"line 10: {PACKAGE}._validation._is_int",
        f"line 10: {PACKAGE}._validation._out_size",
        f"line 10: {PACKAGE}._validation._pair",
        f"line 11: {PACKAGE}.layers._as_rng",
        f"line 11: {PACKAGE}.layers._positive_int",
    ]


def test_private_checker_allows_the_rest():
    source = (
        "import numpy as np\n"
        "import fastconv\n"
        "from . import _validation as _v\n"          # a private module: fine
        "from . import _ext\n"
        "from ._validation import is_int\n"
        "\n"
        "def g(layer, self):\n"
        "    np._NoValue, layer._cache, self._params\n"   # not fastconv modules
        "    _ext._init_gemm(None)\n"                     # the extension: exempt
        "    fastconv.__file__, _v.__name__, fastconv._validation.is_int\n"
        "    _own_helper = 1\n"
        "    return _v.is_int(_own_helper)\n"
    )
    assert _private_uses(source, f"{PACKAGE}.layers", _FAKE) == []
    # The package's own __init__: `from . import x` resolves against itself.
    assert _private_uses("from ._validation import _x\n", PACKAGE, _FAKE,
                         is_pkg=True) == [f"line 1: {PACKAGE}._validation._x"]
    # A module's own private names are its own business.
    assert _private_uses("from . import layers\nlayers._x\n",
                         f"{PACKAGE}.layers", _FAKE) == []


def test_all_checker_on_synthetic_modules():
    parsed = {
        f"{PACKAGE}._validation": (ast.parse('__all__ = ["is_int"]\ndef is_int(v): pass\n'
                                             'def pair(v): pass\n'), "", False),
        f"{PACKAGE}.layers": (ast.parse(""), "from . import _validation as _v\n"
                              "_v.is_int(1), _v.pair(2), _v.__doc__\n", False),
    }
    assert _names_not_in_all(parsed, _FAKE) == [
        f"{PACKAGE}.layers line 2: {PACKAGE}._validation.pair"]
    tree = ast.parse('__all__ = ["a"]\n__all__ += ["b"]\nx = 1\n_y = 2\n'
                     'def f(): pass\nclass C: pass\nimport os\n')
    assert _static_all(tree) == (["a", "b"], 2)
    assert _defined_names(tree) == ["__all__", "x", "_y", "f", "C"]
