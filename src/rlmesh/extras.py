"""How to install this project with an optional extra: the hint of every missing-dependency error.

The distribution named ``rlmesh`` on the public package index is another project, so a hint
of the form ``pip install 'rlmesh[plot]'`` would install that project over this one. Every
hint therefore names where *this* rlmesh came from: the checkout it was installed from (as
recorded by the installer, PEP 610), or, failing that, its source in general. ``docs/install.md``
says the same at length.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["MissingExtraError", "install_hint", "missing_extra"]

DOCS = "docs/install.md"
"""Where the install story is told in full."""


class MissingExtraError(ImportError):
    """An optional dependency of rlmesh is not installed; the message says how to add it."""


def _origin() -> dict[str, Any] | None:
    """Where the installed rlmesh came from (the installer's ``direct_url.json``), if known."""
    try:
        text = metadata.distribution("rlmesh").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        origin = json.loads(text)
    except ValueError:
        return None
    return origin if isinstance(origin, dict) and isinstance(origin.get("url"), str) else None


def install_hint(extra: str) -> str:
    """The command that installs this rlmesh with ``extra`` (e.g. ``"plot"``)."""
    origin = _origin()
    if origin is not None:
        url = str(origin["url"])
        vcs = origin.get("vcs_info")
        if isinstance(vcs, dict) and vcs.get("vcs") == "git":
            commit = vcs.get("requested_revision") or vcs.get("commit_id")
            pin = f"@{commit}" if commit else ""
            return f"pip install 'rlmesh[{extra}] @ git+{url}{pin}'"
        if url.startswith("file://"):
            path = unquote(urlparse(url).path)
            info = origin.get("dir_info")
            if isinstance(info, dict):
                editable = "-e " if info.get("editable") else ""
                return (f"pip install {editable}'{path}[{extra}]' (or, in that checkout, "
                        f"uv sync --extra {extra})")
            return f"pip install 'rlmesh[{extra}] @ {url}'"
    return (f"pip install 'rlmesh[{extra}] @ git+<this project's repository URL>' or "
            f"pip install '<path to an rlmesh checkout>[{extra}]'")


def missing_extra(feature: str, package: str, extra: str) -> MissingExtraError:
    """The error for ``feature`` when ``package`` (from the ``extra`` extra) is not installed.

    Example message: ``rlmesh.torch needs PyTorch, from the 'torch' extra: pip install -e
    '/src/rlmesh[torch]' ...``.
    """
    return MissingExtraError(
        f"{feature} needs {package}, from rlmesh's '{extra}' extra: {install_hint(extra)} "
        f"(the 'rlmesh' on the public package index is another project; see {DOCS})")
