"""The ``rlmesh`` command's evaluation side, run as subprocesses against real servers:
``eval`` (with ``--json``, ``--plot``, ``--policy``, Ctrl+C), ``plot``, ``describe``, ``bench``,
exit codes and error lines.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.evaluation.results import RunResult
from tests.support.deps import need
from tests.support.processes import rlmesh_cmd

pytestmark = pytest.mark.timeout(120)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 200 and height > 200
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"


def local_random_returns(seeds: list[int]) -> list[float]:
    return rlmesh.run(rlmesh.RANDOM_SAMPLE, gym.make("CartPole-v1"), seeds=seeds).rewards


def test_eval_two_endpoints_json_and_plot(spawn: Callable[..., Any], tmp_path: Path) -> None:
    need("matplotlib")
    servers = [spawn("CartPole-v1") for _ in range(2)]
    out, png = tmp_path / "run.json", tmp_path / "run.png"
    result = rlmesh_cmd("eval", *(s.address for s in servers), "--episodes", "8", "--seed", "5",
                        "--json", str(out), "--plot", str(png))
    assert result.returncode == 0, result.stderr
    assert "episodes" in result.stdout and "all" in result.stdout  # the summary table
    run = RunResult.load(out)
    assert run.num_episodes == 8 and run.complete
    assert [e.seed for e in run.episodes] == list(range(5, 13))
    assert run.rewards == local_random_returns(list(range(5, 13)))
    assert {e.endpoint for e in run.episodes} <= {s.address for s in servers}
    assert run.settings["policy_spec"] == "random"
    # The JSON round-trips exactly.
    assert RunResult.from_dict(json.loads(out.read_text())).to_dict() == run.to_dict()
    assert_png(png)
    # rlmesh plot draws the saved run again.
    again = tmp_path / "again.png"
    plotted = rlmesh_cmd("plot", str(out), "-o", str(again))
    assert plotted.returncode == 0, plotted.stderr
    assert_png(again)


POLICY = textwrap.dedent("""
    import rlmesh.numpy

    def lean(obs):
        return int(obs[2] > 0)

    class Lean(rlmesh.numpy.Model):
        def predict(self, obs):
            return int(obs[2] > 0)
""")


@pytest.mark.parametrize("attr", ["lean", "Lean"])
def test_eval_with_a_policy_from_a_module(spawn: Callable[..., Any], tmp_path: Path,
                                          attr: str) -> None:
    (tmp_path / "mypolicies.py").write_text(POLICY)
    server = spawn("CartPole-v1")
    out = tmp_path / "run.json"
    result = rlmesh_cmd("eval", server.address, "--episodes", "3", "--seed", "1",
                        "--policy", f"mypolicies:{attr}", "--json", str(out), "-q",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = rlmesh.run(rlmesh.numpy.Model(lambda o: int(o[2] > 0)),
                          gym.make("CartPole-v1"), seeds=[1, 2, 3]).rewards
    assert RunResult.load(out).rewards == expected
    assert "eval:" not in result.stderr  # -q: no progress


def test_eval_survives_an_unreachable_endpoint(spawn: Callable[..., Any],
                                               tmp_path: Path) -> None:
    server = spawn("CartPole-v1")
    out = tmp_path / "run.json"
    result = rlmesh_cmd("eval", "127.0.0.1:1", server.address, "--episodes", "4",
                        "--json", str(out), "--connect-timeout", "2")
    assert result.returncode == 0, result.stderr
    run = RunResult.load(out)
    assert run.num_episodes == 4
    assert any(e["endpoint"] == "127.0.0.1:1" for e in run.events)
    assert "127.0.0.1:1" in result.stdout  # the events follow the table


SLOW_ENV = textwrap.dedent("""
    import time
    import gymnasium as gym

    class Slow(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return 0, {}

        def step(self, action):
            time.sleep(0.05)
            self.t += 1
            return 0, 1.0, self.t >= 4, False, {}
""")


def test_ctrl_c_saves_the_finished_episodes(spawn: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "slowenv.py").write_text(SLOW_ENV)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    server = spawn("slowenv:Slow", env=env)
    out = tmp_path / "run.json"
    child = subprocess.Popen([sys.executable, "-m", "rlmesh", "eval", server.address,
                              "--episodes", "200", "--json", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # about ten episodes of 0.2 s
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr
    run = RunResult.load(out)
    assert run.interrupted and 0 < run.num_episodes < 200
    assert all(e.steps == 4 and e.reward == 4.0 for e in run.episodes)
    assert "interrupted" in stdout


def test_describe_prints_the_contract(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1", extra_args=["--num-envs", "2"])
    result = rlmesh_cmd("describe", server.address)
    assert result.returncode == 0, result.stderr
    contract = json.loads(result.stdout)
    assert contract["kind"] == "vector_env" and contract["num_envs"] == 2
    assert contract["spaces"]["single_action_space"] == "Discrete(2)"
    assert contract["spaces"]["single_observation_space"].startswith("Box(")
    assert contract["observation_space"]["type"] == "Box"
    assert "-inf" in contract["single_observation_space"]["low"]  # non-finite floats as text


def test_errors_are_one_line_and_exit_codes_follow_convention(tmp_path: Path) -> None:
    unreachable = rlmesh_cmd("describe", "127.0.0.1:1", "--timeout", "2")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("rlmesh: error:")
    assert "Traceback" not in unreachable.stderr and len(unreachable.stderr.splitlines()) == 1
    verbose = rlmesh_cmd("--verbose", "describe", "127.0.0.1:1", "--timeout", "2")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert rlmesh_cmd("eval").returncode == 2  # no address: a usage error
    assert rlmesh_cmd("eval", "127.0.0.1:1", "--episodes", "0").returncode == 2
    assert rlmesh_cmd("plot", str(tmp_path / "missing.json")).returncode == 1
    (tmp_path / "foreign.json").write_text("{}")
    foreign = rlmesh_cmd("plot", str(tmp_path / "foreign.json"))
    assert foreign.returncode == 1 and "not an rlmesh run" in foreign.stderr
    for command in ("eval", "describe", "plot", "bench"):
        shown = rlmesh_cmd(command, "--help")
        assert shown.returncode == 0 and "usage:" in shown.stdout


@pytest.mark.timeout(180)
def test_bench_runs_the_quick_suite() -> None:
    result = rlmesh_cmd("bench", "--suite", "vector", timeout=170)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "make_vec" in result.stdout and "ratio" in result.stdout
