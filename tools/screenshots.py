"""Regenerate the viewer screenshots of the docs from real runs in headless Chromium.

    uv run python tools/screenshots.py      # writes docs/images/viewer-*.png

The dashboard shot is a 4-endpoint evaluation: four ``rlmesh serve`` children serving
CartPole (``rgb_array`` frames, each step slowed so the run is still going when the browser
looks), watched through ``rlmesh.evaluate(..., view=dashboard)``; the same servers are then
evaluated by ``rlmesh eval --view terminal`` in a tmux pane. The live run viewer is shot on
its web page and in a terminal (``tools/terminal_shots.py``). Needs Debian's ``chromium`` and
``tmux``. Everything stays on loopback; the browser gets a throwaway profile and no network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from terminal_shots import eval_terminal_shot, run_http_shot, run_terminal_shot

import rlmesh
from rlmesh.testing import ServerProcess, spawn_server
from rlmesh.viewer.dashboard import Dashboard

ROOT = Path(__file__).resolve().parent.parent
SLOW_ENV = '''
import time
import gymnasium as gym


class SlowCartPole(gym.Wrapper):
    def __init__(self, delay=0.01):
        super().__init__(gym.make("CartPole-v1", render_mode="rgb_array"))
        self.delay = delay

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)
'''
BROWSER = ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


class _Enough(Exception):
    """Ends the run once the screenshot is taken."""


class _StopWhenTold(rlmesh.Hooks):
    def __init__(self) -> None:
        self.stop = threading.Event()

    def on_step(self, *args: Any) -> None:
        if self.stop.is_set():
            raise _Enough


def screenshot(browser: str, url: str, out: Path, budget_ms: int,
               size: tuple[int, int] = (1280, 900)) -> None:
    """A screenshot of ``url`` (loopback) after ``budget_ms`` of the page's time."""
    assert url.startswith("http://127.0.0.1:"), url
    with tempfile.TemporaryDirectory(prefix="rlmesh-shots-") as profile:
        process = subprocess.Popen(
            [browser, *BROWSER, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
             f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "HOME": profile})
        try:
            process.wait(120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait(10)
    if process.returncode != 0 or not out.exists():
        raise SystemExit(f"chromium could not take {out.name} (exit {process.returncode})")


def dashboard_shot(browser: str, out: Path, endpoints: int) -> None:
    """The evaluation dashboard of a live ``endpoints``-endpoint run, on the web and in a terminal.

    The terminal's shot is ``viewer-eval-terminal.png`` next to ``out``.
    """
    with tempfile.TemporaryDirectory(prefix="rlmesh-shots-env-") as folder:
        (Path(folder) / "rlmesh_shots_env.py").write_text(SLOW_ENV)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (folder, os.environ.get("PYTHONPATH")) if p)}
        servers: list[ServerProcess] = []
        try:
            for _ in range(endpoints):
                servers.append(spawn_server("rlmesh_shots_env:SlowCartPole", env=env))
            stopper, out_box = _StopWhenTold(), {}
            with Dashboard() as dashboard:
                def play() -> None:
                    with contextlib.suppress(_Enough):  # (the stopper ends the run)
                        out_box["result"] = rlmesh.evaluate(
                            rlmesh.RANDOM_SAMPLE, [s.address for s in servers], episodes=5000,
                            seed=0, hooks=stopper, view=dashboard)
                thread = threading.Thread(target=play, daemon=True)
                thread.start()
                time.sleep(6)  # enough episodes for a plot worth looking at
                screenshot(browser, dashboard.url, out, 2500)
                stopper.stop.set()
                thread.join(30)
            eval_terminal_shot(_shooter(browser), out.with_name("viewer-eval-terminal.png"),
                               [s.address for s in servers])
        finally:
            for server in servers:
                server.stop()
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def main() -> int:
    """Take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--endpoints", type=int, default=4)
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    dashboard_shot(browser, args.out / "viewer-dashboard.png", args.endpoints)
    run_http_shot(_shooter(browser, 2000), args.out / "viewer-run-http.png")
    run_terminal_shot(_shooter(browser), args.out / "viewer-run-terminal.png")
    return 0


def _shooter(browser: str, budget_ms: int = 500) -> Any:
    """``shot(url, out, width, height)`` with this browser."""
    def shot(url: str, out: Path, width: int, height: int) -> None:
        screenshot(browser, url, out, budget_ms, (width, height))
    return shot


if __name__ == "__main__":
    sys.exit(main())
