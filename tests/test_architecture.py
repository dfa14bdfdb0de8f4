"""The house keeps its shape: no import cycle, layers that only point down, complete exports.

The layers themselves are an import-linter contract in ``pyproject.toml`` (checked by
``test_quality.py``); this module adds what import-linter does not say: no module imports
another that imports it back, deferred (function-level) imports included.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import rlmesh

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rlmesh"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(tree: ast.AST, here: str) -> Iterator[str]:
    """Every rlmesh module ``here`` imports, at any depth, except under ``TYPE_CHECKING``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (name for child in node.orelse for name in _imports(child, here))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield candidate if candidate in MODULES else node.module
        yield from _imports(node, here)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {t for t in _imports(ast.parse(path.read_text()), name)
                   if t in MODULES and t != name}
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_the_imports() -> None:
    edges = graph()
    assert "rlmesh.wire.decoder" in edges["rlmesh.client.exchange"]
    assert "rlmesh.client.resuming" in edges["rlmesh.client.channel"]
    assert "rlmesh.server.server" in edges["rlmesh.models.model"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle_deferred_imports_included() -> None:
    assert cycles(graph()) == []


def test_package_inits_import_nothing_but_their_own_faces() -> None:
    """A sub-package's ``__init__`` loads no sibling module eagerly (lazy faces only)."""
    for name, path in MODULES.items():
        if path.name != "__init__.py" or name in ("rlmesh", "rlmesh.protocol", "rlmesh.cli"):
            continue
        eager = [t for t in _imports(ast.parse(path.read_text()), name)
                 if t in MODULES and not _inside_function(path, t)]
        assert eager == [], f"{name} imports {eager} when it is imported"


def _inside_function(path: Path, target: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and target in set(_imports(node, "")) for node in ast.walk(tree))


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("__main__")
                                        and n != "rlmesh.server.worker_main"))
def test_every_module_declares_its_public_names(name: str) -> None:
    module = importlib.import_module(name) if name not in ("rlmesh.torch", "rlmesh.jax",
                                                          "rlmesh.sb3") else None
    source = MODULES[name].read_text()
    assert "__all__" in source, f"{name} has no __all__"
    if module is None:
        return
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, which is missing"


def test_the_public_face_exports_everything_it_defines() -> None:
    public = {name for name, value in vars(rlmesh).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and not isinstance(value, __future__._Feature)}
    assert public - set(rlmesh.__all__) == set(), "names on rlmesh missing from __all__"
    for name in ("spaces", "tls", "numpy"):  # loaded on first use (PEP 562)
        assert isinstance(getattr(rlmesh, name), types.ModuleType), name


def test_the_public_face_loads_every_name_it_lists() -> None:
    assert set(rlmesh.__all__) <= set(dir(rlmesh))
    for name in rlmesh.__all__:
        assert getattr(rlmesh, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        rlmesh.not_a_name  # noqa: B018
