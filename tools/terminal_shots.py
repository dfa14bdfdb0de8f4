"""The terminal and run-viewer screenshots of ``tools/screenshots.py``.

* ``viewer-run-http.png``: ``rlmesh.run(..., view=View(backend="http"))`` on a slow CartPole,
  its page in headless Chromium while the run plays;
* ``viewer-run-terminal.png``: the same run with ``view="terminal"`` in a tmux pane;
* ``viewer-eval-terminal.png``: ``rlmesh eval`` of four endpoints with ``--view terminal`` in
  a tmux pane.

A pane is captured with ``tmux capture-pane -e -p`` (SGR colours kept), turned into a page by
``tools/ansi_html.py``, served on loopback and screenshot by Chromium. tmux runs on a private
socket (``-L``) whose server is killed afterwards; everything stays on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from ansi_html import CELL_H, CELL_W, convert

RUN_SCRIPT = """
import time
import gymnasium as gym
import rlmesh

def policy(observation):
    time.sleep(0.01)
    return int(3 * observation[2] + observation[3] > 0)

env = gym.make("CartPole-v1", render_mode="rgb_array")
rlmesh.run(policy, env, seeds=range(1000), view={view})
"""
Shot = Callable[[str, Path, int, int], None]
"""``shot(url, out, width, height)``: a Chromium screenshot of a loopback page."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def tmux_session(command: str, columns: int, lines: int) -> Iterator[Callable[..., str]]:
    """``command`` in a detached pane of a private tmux server; ``call(*args)`` runs tmux."""
    binary = shutil.which("tmux")
    if binary is None:
        raise SystemExit("needs tmux (apt-get install tmux)")
    name = f"rlmesh-shots-{os.getpid()}"

    def call(*args: str) -> str:
        return subprocess.run([binary, "-L", name, *args], capture_output=True, text=True,
                              timeout=15, check=True).stdout

    call("new-session", "-d", "-s", "shot", "-x", str(columns), "-y", str(lines), command)
    try:
        yield call
    finally:
        subprocess.run([binary, "-L", name, "kill-server"], capture_output=True, timeout=15,
                       check=False)


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1; its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request log."""


def pane_shot(shot: Shot, capture: str, out: Path, columns: int, lines: int) -> None:
    """A screenshot of a captured pane, drawn as an HTML grid."""
    with tempfile.TemporaryDirectory(prefix="rlmesh-pane-") as folder:
        (Path(folder) / "pane.html").write_text(convert(capture, out.stem), encoding="utf-8")
        with serve_folder(Path(folder)) as base:
            shot(base + "pane.html", out, columns * CELL_W + 24, lines * CELL_H + 24)


def _wait_capture(tmux: Callable[..., str], ready: Callable[[str], bool],
                  within: float = 60.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = tmux("capture-pane", "-e", "-p", "-t", "shot")
        if ready(text):
            return text
        time.sleep(0.2)
    raise SystemExit("the pane never showed what the screenshot needs")


def run_terminal_shot(shot: Shot, out: Path) -> None:
    """The run viewer in a 100x34 terminal."""
    with tempfile.TemporaryDirectory(prefix="rlmesh-shots-run-") as folder:
        script = Path(folder) / "run.py"
        script.write_text(RUN_SCRIPT.format(view='"terminal"'))
        with tmux_session(f"{sys.executable} {script}", 100, 34) as tmux:
            _wait_capture(tmux, lambda t: t.count("\u2580") > 500 and "episode 1" in t)
            capture = _wait_capture(tmux, lambda t: t.count("\u2580") > 500)
            tmux("send-keys", "-t", "shot", "q")
    pane_shot(shot, capture, out, 100, 34)
    print(f"wrote {out.name}")


def eval_terminal_shot(shot: Shot, out: Path, addresses: list[str]) -> None:
    """The evaluation dashboard of ``addresses`` in a 120x40 terminal."""
    command = (f"{sys.executable} -m rlmesh eval {' '.join(addresses)} --episodes 5000 "
               "--seed 0 --view terminal")
    with tmux_session(command, 120, 40) as tmux:
        capture = _wait_capture(tmux, lambda t: _finished(t) >= 60 and "\u2580" in t)
        tmux("send-keys", "-t", "shot", "q")
    pane_shot(shot, capture, out, 120, 40)
    print(f"wrote {out.name}")


def _finished(screen: str) -> int:
    """The episodes the terminal dashboard counts on its returns line (-1: none yet)."""
    found = re.search(r"returns (\d+)/", screen)
    return int(found.group(1)) if found else -1


def run_http_shot(shot: Shot, out: Path) -> None:
    """The run viewer's web page during a real run."""
    port = free_port()
    view = f"rlmesh.View(backend='http', port={port}, fps=10)"
    with tempfile.TemporaryDirectory(prefix="rlmesh-shots-run-") as folder:
        script = Path(folder) / "run.py"
        script.write_text(RUN_SCRIPT.format(view=view))
        child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}/"
            _wait_http(base + "state.json")
            time.sleep(3)  # a few episodes in
            shot(base, out, 1100, 760)
            with contextlib.suppress(OSError):
                urllib.request.urlopen(base + "control?action=quit", timeout=5).close()
            child.wait(30)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, 9)
                child.wait(10)
    print(f"wrote {out.name}")


def _wait_http(url: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
            return
        time.sleep(0.2)
    raise SystemExit(f"nothing answered at {url}")
