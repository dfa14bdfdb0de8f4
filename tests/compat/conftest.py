"""Isolated stacks for the compat tests: one uv venv per stack, built once a session.

Each venv holds a wheel of this checkout plus the stack's pins. ``uv pip install
--offline`` is tried first (a warm cache builds a venv in well under a second), then online.
Without uv, or where the stack cannot be installed, the tests skip saying why, unless
``RLMESH_REQUIRE_BACKENDS=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("RLMESH_REQUIRE_BACKENDS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def rlmesh_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout (never editable: rebuilding one per venv is slow)."""
    uv = shutil.which("uv")
    if uv is None:
        _fail_or_skip("uv is not on PATH; the isolated-stack tests build venvs with it")
    out = tmp_path_factory.mktemp("wheel")
    done = _run([str(uv), "build", "--wheel", "--out-dir", str(out), str(ROOT)])
    wheels = sorted(out.glob("rlmesh-*.whl"))
    if done.returncode != 0 or not wheels:
        _fail_or_skip(f"uv build --wheel failed: {done.stderr[-2000:]}")
    return wheels[0]


@pytest.fixture(scope="session")
def stack(rlmesh_wheel: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Callable[..., Path]]:
    """``stack(name, *requirements)``: the python of a venv with them and this rlmesh."""
    uv = str(shutil.which("uv"))
    root = tmp_path_factory.mktemp("stacks")
    built: dict[str, Path] = {}

    def build(name: str, *requirements: str) -> Path:
        if name in built:
            return built[name]
        venv = root / name
        made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        if made.returncode != 0:
            _fail_or_skip(f"uv venv failed: {made.stderr[-2000:]}")
        python = venv / "bin" / "python"
        install = [uv, "pip", "install", "--quiet", "--python", str(python), *requirements,
                   str(rlmesh_wheel)]
        done = _run([*install, "--offline"])
        if done.returncode != 0:
            done = _run(install)
        if done.returncode != 0:
            _fail_or_skip(f"cannot install {' '.join(requirements)}: {done.stderr[-2000:]}")
        built[name] = python
        return python

    yield build
