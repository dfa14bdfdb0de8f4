"""Terminals for the viewer tests: a private tmux server, and reading its pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Tmux = Callable[..., str]
"""``tmux(*args)``: one tmux command on the test's own server; its stdout."""


def need_tmux() -> str:
    """The tmux binary, or skip (fail under ``RLMESH_REQUIRE_BACKENDS=1``)."""
    found = shutil.which("tmux")
    if found is None:
        if os.environ.get("RLMESH_REQUIRE_BACKENDS") == "1":
            raise AssertionError("tmux is not installed (RLMESH_REQUIRE_BACKENDS=1)")
        pytest.skip("tmux is not installed (the terminal viewer is tested in a real terminal)")
    return found


def private_tmux(folder: Path) -> Iterator[Tmux]:
    """A tmux server on its own socket in ``folder``, killed (with its panes) afterwards."""
    binary = need_tmux()
    socket = str(folder / "tmux.sock")

    def call(*args: str) -> str:
        done = subprocess.run([binary, "-S", socket, *args], capture_output=True, text=True,
                              timeout=15, check=True)
        return done.stdout

    try:
        yield call
    finally:
        subprocess.run([binary, "-S", socket, "kill-server"], capture_output=True, timeout=15,
                       check=False)


def wait_pane(tmux: Tmux, ok: Callable[[str], bool], escapes: bool = False,
              within: float = 40.0, target: str = "view") -> str:
    """Capture the pane until ``ok`` holds for its text (with SGR escapes if asked)."""
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        text = tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", target)
        if ok(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"the pane never showed what was expected:\n{text}")
