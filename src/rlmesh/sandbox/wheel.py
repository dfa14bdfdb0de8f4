"""This rlmesh, as something a sandbox installs: a built wheel, never an editable install.

A server inside a sandbox must run the caller's own rlmesh (the handshake refuses a
different protocol). By default that is a wheel built from the caller's source checkout with
``uv build --wheel``, once, into the cache: the wheel's entry is keyed by a hash of the
package's sources and ``pyproject.toml``, so an edit rebuilds it and nothing else does. An
editable install is never used: it rebuilds on every install and ties the sandbox to the
checkout. The wheel is pure Python (the optional compiled extension is left out), so it
installs under any Python version and platform a sandbox runs.

``SandboxBuild.rlmesh_package`` (or ``$RLMESH_SANDBOX_RLMESH_PACKAGE``) overrides it: a wheel
file, or any requirement uv takes (a directory, a URL, a pinned name). The name ``rlmesh``
on the public package index is a different project: install this one from source.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rlmesh.errors import SandboxError
from rlmesh.protocol import LIBRARY_VERSION
from rlmesh.sandbox.cache import build_once, cache_root
from rlmesh.sandbox.uvtool import run_uv

__all__ = ["RlmeshPackage", "rlmesh_package", "source_checkout"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``rlmesh`` package directory this module was imported from."""


@dataclass(frozen=True)
class RlmeshPackage:
    """The rlmesh a sandbox installs.

    Args:
        requirement: What is passed to ``uv pip install`` (a wheel path or a requirement).
        identity: What identifies it in a cache key (a content hash, or the requirement).
    """

    requirement: str
    identity: str


def source_checkout() -> Path | None:
    """The root of the source checkout this rlmesh was imported from, if it is one.

    That is a directory holding ``pyproject.toml`` for the project ``rlmesh`` and the
    package under ``src/rlmesh`` (an editable or plain checkout; not an installed wheel).
    """
    root = _PACKAGE_DIR.parents[1]
    pyproject = root / "pyproject.toml"
    if _PACKAGE_DIR.parent.name != "src" or not pyproject.is_file():
        return None
    text = pyproject.read_text(errors="replace")
    if re.search(r'^name\s*=\s*"rlmesh"\s*$', text, re.MULTILINE) is None:
        return None
    return root


def _source_hash(root: Path) -> str:
    """A hash of the package's files (not caches) and ``pyproject.toml``."""
    digest = hashlib.sha256()
    files = [root / "pyproject.toml"]
    for directory, subdirs, names in os.walk(root / "src" / "rlmesh"):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        files.extend(Path(directory) / name for name in sorted(names)
                     if not name.endswith((".pyc", ".pyo", ".so")))
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _built_wheel(root: Path) -> RlmeshPackage:
    """The wheel of the checkout at ``root``, built into the cache if needed."""
    source = _source_hash(root)

    def build(directory: Path) -> None:
        # Pure Python (no compiled extension): the wheel installs under any Python version
        # and platform a sandbox runs, where the client's compiled step is not needed.
        run_uv(["build", "--wheel", "--out-dir", str(directory), str(root)],
               what=f"building the rlmesh wheel from {root}",
               env={"RLMESH_BUILD_EXTENSIONS": "0"})

    entry = build_once(cache_root() / "wheels" / source, build,
                       {"kind": "wheel", "version": LIBRARY_VERSION, "source": str(root)})
    wheels = sorted(entry.glob("rlmesh-*.whl"))
    if not wheels:
        raise SandboxError(f"the cached wheel entry {entry} holds no rlmesh wheel; remove it")
    return RlmeshPackage(str(wheels[0]), f"source:{source}")


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:24]


def rlmesh_package(requested: str | None = None) -> RlmeshPackage:
    """The rlmesh to install in a sandbox.

    Args:
        requested: ``SandboxBuild.rlmesh_package``: a wheel path, a requirement, or
            ``"local"`` (a wheel of the source checkout, as with ``None``). ``None`` takes
            ``$RLMESH_SANDBOX_RLMESH_PACKAGE`` if set, else builds the checkout's wheel.

    Raises:
        SandboxError: Nothing is requested and this rlmesh is not a source checkout, or
            the wheel does not build.
    """
    requested = requested or os.environ.get("RLMESH_SANDBOX_RLMESH_PACKAGE") or None
    if requested and requested != "local":
        path = Path(requested).expanduser()
        if requested.endswith(".whl"):
            if not path.is_file():
                raise SandboxError(f"rlmesh_package {requested!r}: no such wheel file")
            return RlmeshPackage(str(path.resolve()), f"wheel:{_file_hash(path)}")
        return RlmeshPackage(requested, f"requirement:{requested}")
    root = source_checkout()
    if root is None:
        raise SandboxError(
            f"cannot tell which rlmesh to install in the sandbox: rlmesh {LIBRARY_VERSION} "
            f"at {_PACKAGE_DIR} is not a source checkout. Pass "
            "SandboxBuild(rlmesh_package=...) a wheel of this rlmesh (built from its source "
            "with 'uv build --wheel'), or set RLMESH_SANDBOX_RLMESH_PACKAGE")
    return _built_wheel(root)
