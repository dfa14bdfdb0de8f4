"""The dashboard in a real browser: Debian's headless Chromium during a real evaluation.

Chromium loads the page twice while four endpoints play (``--dump-dom``: the DOM after the
page's scripts ran for a while) and takes a screenshot, kept as a test artifact
(``$RLMESH_ARTIFACTS``, else the test's tmp folder). The browser gets its own profile folder,
only loopback URLs, no proxy and no background networking; its process group is killed after.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rlmesh
from rlmesh.testing import ServerProcess
from rlmesh.viewer.dashboard import Dashboard
from tests.support.deps import need_program
from tests.support.processes import kill_group
from tests.support.slow_env import slow_env_environment
from tests.viewer.dashboards import Background, spawn_rendering, wait_state

pytestmark = pytest.mark.timeout(180)

QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--no-first-run", "--mute-audio",
         "--disable-extensions", "--metrics-recording-only", "--password-store=basic"]


class _Stop(Exception):
    """Raised by a hook to end the run once the browser has seen enough."""


class StopWhenTold(rlmesh.Hooks):
    def __init__(self) -> None:
        self.stop = threading.Event()

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        if self.stop.is_set():
            raise _Stop("the browser has seen enough")


def chromium(binary: str, profile: Path, *args: str, timeout: float = 90) -> str:
    """Run headless Chromium on loopback URLs; its stdout. The process group dies after."""
    assert all("://" not in a or a.startswith("http://127.0.0.1:") for a in args), args
    process = subprocess.Popen([binary, *QUIET, f"--user-data-dir={profile}", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, "HOME": str(profile)})
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        kill_group(process)
    assert process.returncode == 0, f"chromium exited with {process.returncode}"
    return out.decode(errors="replace")


def tiles_of(dom: str) -> list[tuple[int, int]]:
    """``(frames seen, frame version shown)`` of every tile in a dumped DOM."""
    found = []
    for tag in re.findall(r"<div class=\"tile\"[^>]*>", dom):
        seen = re.search(r'data-frames-seen="(\d+)"', tag)
        version = re.search(r'data-frame-version="(\d+)"', tag)
        assert seen and version, tag
        found.append((int(seen.group(1)), int(version.group(1))))
    return found


def points_of(dom: str) -> int:
    found = re.search(r'<svg id="plot"[^>]*data-points="(\d+)"', dom)
    assert found, "no plot in the page"
    return int(found.group(1))


def keep_artifact(path: Path) -> Path:
    """Copy ``path`` under ``$RLMESH_ARTIFACTS`` when set (CI keeps that folder)."""
    folder = os.environ.get("RLMESH_ARTIFACTS")
    if not folder:
        return path
    target = Path(folder) / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def test_headless_chromium_watches_a_four_endpoint_run(
        spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    binary = need_program("chromium", "/usr/bin/chromium")
    servers = spawn_rendering(spawn, slow_env_environment(tmp_path), 4)
    stopper = StopWhenTold()
    profile = tmp_path / "chromium-profile"
    with Dashboard(fps=5) as dashboard:
        run = Background(rlmesh.RANDOM_SAMPLE, [s.address for s in servers], episodes=2000,
                         seed=0, hooks=stopper, view=dashboard)
        try:
            wait_state(dashboard.url, lambda s: len(s["episodes"]) >= 4)
            first = chromium(binary, profile, "--virtual-time-budget=1500", "--dump-dom",
                             dashboard.url)
            second = chromium(binary, profile, "--virtual-time-budget=3000", "--dump-dom",
                              dashboard.url)
            shot = tmp_path / "viewer-dashboard-test.png"
            chromium(binary, profile, "--virtual-time-budget=2000", "--window-size=1280,900",
                     f"--screenshot={shot}", dashboard.url)
            assert run.running, "the run ended before the browser saw it live"
        finally:
            stopper.stop.set()
        with pytest.raises(_Stop):
            run.result()
    before, after = tiles_of(first), tiles_of(second)
    assert len(before) == len(after) == 4
    assert all(seen >= 1 for seen, _ in before), before  # every tile shows a frame
    assert sum(seen for seen, _ in after) > len(after), after  # the page swapped frames live
    grew = [new > old for (_, old), (_, new) in zip(before, after, strict=True)]
    assert all(grew), (before, after)  # every tile shows a newer frame the second time
    assert points_of(first) >= 4 and points_of(second) > points_of(first)
    assert 'data-done="0"' in second  # still running: no summary yet
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    keep_artifact(shot)
