"""``rlmesh eval ... --view http:PORT``: the dashboard from the command line, in a child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from tests.support.net import free_port, wait_until_listening
from tests.support.painted import painted_cartpole
from tests.support.processes import kill_group, rlmesh_cmd, wait_for
from tests.viewer.dashboards import state, wait_state

pytestmark = pytest.mark.timeout(120)


def test_eval_view_serves_the_run_and_lingers_until_ctrl_c(
        serve: Callable[..., Any], tmp_path: Path) -> None:
    servers = [serve(lambda: painted_cartpole())
               for _ in range(2)]
    port = free_port()
    log = tmp_path / "eval.log"
    with open(log, "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "rlmesh", "eval", *(s.address for s in servers),
             "--episodes", "12", "--seed", "3", "-q", "--view", f"http:{port}",
             "--view-linger", "inf"], stdout=subprocess.PIPE, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_listening(child, port, log)
        base = f"http://127.0.0.1:{port}/"
        final = wait_state(base, lambda s: s["summary"] is not None, within=60)
        assert final["summary"]["num_episodes"] == 12 and final["summary"]["complete"]
        assert sorted(e["seed"] for e in final["episodes"]) == list(range(3, 15))
        assert {t["endpoint"] for t in final["tiles"]} == {s.address for s in servers}
        lingering = wait_for(  # (the report is written first)
            lambda: "until Ctrl+C" in log.read_text(errors="replace") or child.poll() is not None,
            within=30)
        assert lingering and child.poll() is None  # the summary stays on the page
        assert state(base)["summary"] == final["summary"]
        os.kill(child.pid, signal.SIGINT)  # Ctrl+C ends the lingering
        out, _ = child.communicate(timeout=30)
    finally:
        kill_group(child)
    assert child.returncode == 0, log.read_text()
    text = log.read_text()
    assert f"watch the evaluation at http://127.0.0.1:{port}/" in text
    assert "until Ctrl+C" in text
    assert b"12" in out  # the summary is printed as without --view


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_eval_view_exits_with_the_run_by_default(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    done = rlmesh_cmd("eval", server.address, "--episodes", "2", "-q", "--view", "http")
    assert done.returncode == 0, done.stderr
    assert "watch the evaluation at http://127.0.0.1:" in done.stderr


@pytest.mark.parametrize("view", ["window", "http:notaport"])
def test_eval_refuses_a_bad_view(serve: Callable[..., Any], view: str) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    done = rlmesh_cmd("eval", server.address, "--episodes", "1", "-q", "--view", view)
    assert done.returncode == 2 and "view=" in done.stderr, done.stderr
