"""Sandbox tests: real uv, real server processes, one private env cache for the session.

Every test here shares one cache directory (``RLMESH_CACHE_DIR``), so the suite builds the
rlmesh wheel once and a single isolated environment (``numpy<2`` beside this rlmesh), which
the tests reuse. uv's own package cache stays the user's, so repeated runs install from it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmesh.sandbox.options import SandboxBuild, SandboxRuntime

PROBE_ENV = '''
import gymnasium as gym
import numpy


class Probe(gym.Wrapper):
    """CartPole that says which numpy the server runs with."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        info["numpy"] = numpy.__version__
        return obs, info


def make(**kwargs):
    return Probe(gym.make("CartPole-v1", **kwargs))
'''

OLD_NUMPY = SandboxBuild(packages=["numpy<2"])
"""The one stack the suite builds."""

UV = SandboxRuntime(backend="uv", start_timeout_seconds=240)


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private env cache for the whole session (RLMESH_CACHE_DIR)."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed (pip install uv)")
    root = tmp_path_factory.mktemp("rlmesh-cache")
    previous = os.environ.get("RLMESH_CACHE_DIR")
    os.environ["RLMESH_CACHE_DIR"] = str(root)
    yield root
    if previous is None:
        os.environ.pop("RLMESH_CACHE_DIR", None)
    else:
        os.environ["RLMESH_CACHE_DIR"] = previous


@pytest.fixture
def probe_dir(sandbox_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ``probe_env.py`` (the sandbox server imports it from there)."""
    (tmp_path / "probe_env.py").write_text(PROBE_ENV)
    monkeypatch.chdir(tmp_path)
    return tmp_path
