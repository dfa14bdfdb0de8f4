"""The code-quality gates run as tests, so `uv run pytest` is the whole check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(300)
def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or "ruff"
    result = _run(ruff, "check", "src", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_layering_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts: layers point down, faces are not imported."""
    lint_imports = shutil.which("lint-imports") or "lint-imports"
    result = _run(lint_imports)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_version_is_stated_once() -> None:
    """``rlmesh.__version__`` (and what servers report) is pyproject.toml's version."""
    tomllib = pytest.importorskip("tomllib")  # (Python 3.11+)

    import rlmesh
    from rlmesh import protocol

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert rlmesh.__version__ == protocol.LIBRARY_VERSION == declared
    assert protocol.server_info()["version"] == declared
    assert protocol.CLIENT_NAME.endswith("/" + declared)
    source = (ROOT / "src" / "rlmesh" / "protocol" / "__init__.py").read_text()
    assert f'"{declared}"' not in source, "the version is written out in the protocol module"
