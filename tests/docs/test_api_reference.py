"""The site's API reference covers every public name.

The public modules are ``rlmesh`` itself, the faces of the import-linter contract's face
layer (``pyproject.toml``), ``rlmesh.serve``, the submodules ``rlmesh`` exposes as
attributes, and ``rlmesh.errors`` and ``rlmesh.tensor``. Each has a page ``docs/api/NAME.md``
in the site's navigation, and every name of its ``__all__`` is documented there: checked
statically from the pages' ``::: target`` directives (no MkDocs needed), then for real in
the objects inventory of a strict build (``objects.inv``), when MkDocs is installed.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import tomllib

from tests.support.deps import need

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
API = ROOT / "docs" / "api"
DIRECTIVE = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)


def _source(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _literal(module: str, name: str) -> object:
    """The literal value assigned to ``name`` at the top of ``module``'s source."""
    for node in ast.parse(_source(module).read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module} assigns no literal {name}")


def public_all(module: str) -> list[str]:
    names = _literal(module, "__all__")
    assert isinstance(names, list)
    return names


def submodules() -> set[str]:
    """The modules ``rlmesh`` exposes as attributes (its lazy table's module entries)."""
    lazy = _literal("rlmesh", "_LAZY")
    assert isinstance(lazy, dict)
    return {target for target in lazy.values() if ":" not in target}


def public_modules() -> list[str]:
    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"][0]["layers"]
    faces = next(layer for layer in layers if "rlmesh.numpy" in layer)
    modules = {name.strip() for name in faces.split("|")}
    modules |= submodules() | {"rlmesh", "rlmesh.serve", "rlmesh.errors", "rlmesh.tensor"}
    return sorted(modules)


def page(module: str) -> Path:
    return API / f"{module.rpartition('.')[2] if module != 'rlmesh' else 'rlmesh'}.md"


def directives() -> set[str]:
    return {target for path in API.glob("*.md") for target in DIRECTIVE.findall(path.read_text())}


def covered(module: str, name: str, targets: set[str]) -> bool:
    if f"{module}.{name}" in targets:
        return True
    if module == "rlmesh" and f"rlmesh.{name}" in submodules():
        return f"rlmesh.{name}" in targets   # a submodule: documented on its own page
    return module != "rlmesh" and module in targets   # a whole-module directive


def test_the_public_modules_are_found() -> None:
    modules = public_modules()
    for expected in ("rlmesh.numpy", "rlmesh.torch", "rlmesh.jax", "rlmesh.spaces",
                     "rlmesh.specs", "rlmesh.params", "rlmesh.adapters", "rlmesh.ray",
                     "rlmesh.sb3", "rlmesh.tls", "rlmesh.testing", "rlmesh.types"):
        assert expected in modules
    assert len(public_all("rlmesh")) > 50


@pytest.mark.parametrize("module", public_modules())
def test_every_public_module_has_a_page_in_the_navigation(module: str) -> None:
    path = page(module)
    assert path.exists(), f"{module} has no API page {path.relative_to(ROOT)}"
    assert f"api/{path.name}" in (ROOT / "mkdocs.yml").read_text(), f"{path.name} not in nav"
    assert re.search(rf"^:::\s+{re.escape(module)}(\.\S+)?\s*$", path.read_text(), re.MULTILINE)


@pytest.mark.parametrize("module", public_modules())
def test_every_public_name_has_a_directive(module: str) -> None:
    targets = directives()
    missing = [name for name in public_all(module) if not covered(module, name, targets)]
    assert not missing, f"{module}: not in the API reference (docs/api/): {missing}"


def read_inventory(path: Path) -> set[str]:
    """The object names of a Sphinx inventory (version 2): four text lines, then zlib."""
    data = path.read_bytes()
    header = data.split(b"\n", 4)
    assert header[0].startswith(b"# Sphinx inventory version 2"), header[0]
    body = zlib.decompress(header[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


@pytest.mark.timeout(180)
def test_the_strict_build_renders_every_public_name(tmp_path: Path) -> None:
    need("mkdocs")
    need("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-4000:]
    assert "WARNING" not in build.stderr, build.stderr[-4000:]
    rendered = read_inventory(site / "objects.inv")
    missing = []
    for module in public_modules():
        for name in public_all(module):
            if module == "rlmesh" and f"rlmesh.{name}" in submodules():
                continue   # checked above: the submodule has its own page
            if f"{module}.{name}" not in rendered:
                missing.append(f"{module}.{name}")
    assert not missing, f"documented nowhere on the built site: {missing}"
