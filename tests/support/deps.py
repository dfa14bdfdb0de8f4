"""Optional dependencies: import one, or skip the test saying how to install it."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest


def need(module: str) -> Any:
    """Import an optional dependency, or skip the test with the reason it is absent.

    The optional frameworks and env suites come with ``uv sync --all-groups``. CI sets
    ``RLMESH_REQUIRE_BACKENDS=1`` so that a missing one fails the test instead of skipping it.
    """
    if os.environ.get("RLMESH_REQUIRE_BACKENDS") == "1":
        return importlib.import_module(module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = ("PyTorch and Stable-Baselines3 install with pip (docs/install.md)"
               if module.split(".")[0] in _PIP_ONLY else
               "`uv sync --all-groups` installs the optional frameworks and env suites")
        pytest.skip(f"{module} is not installed ({exc}); {how}", allow_module_level=True)


_PIP_ONLY = {"torch", "stable_baselines3"}
"""Optional dependencies outside the uv groups (uv would fetch a multi-GB CUDA torch)."""


_PIP_ONLY = {"torch", "stable_baselines3"}
"""Optional dependencies outside the uv groups (uv would fetch a multi-GB CUDA torch)."""


def need_program(name: str, path: str | None = None) -> str:
    """The path of an external program, or skip the test saying it is absent.

    Under ``RLMESH_REQUIRE_BACKENDS=1`` (CI) a missing program fails the test instead.
    """
    import shutil

    found = path if path is not None and os.access(path, os.X_OK) else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian: apt-get install {name})"
        if os.environ.get("RLMESH_REQUIRE_BACKENDS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found
