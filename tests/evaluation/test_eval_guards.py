"""Guards of an evaluation: no pooling of different envs, missing extras caught before the
run, and a saved run that says what it was played on, by which rlmesh, when and where."""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.envs import CounterEnv
from rlmesh.evaluation.results import RunResult
from tests.support.processes import rlmesh_cmd

pytestmark = pytest.mark.timeout(90)


def cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")


def test_evaluate_refuses_endpoints_that_serve_different_envs(serve: Any) -> None:
    pole, counter = serve(cartpole).address, serve(CounterEnv).address
    with pytest.raises(rlmesh.EndpointKindError) as info:
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [pole, counter], episodes=4)
    message = str(info.value)
    assert pole in message and counter in message and "CartPole-v1" in message
    assert "allow_mixed=True" in message
    pooled = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [pole, counter], episodes=4, seed=0,
                             allow_mixed=True)
    assert pooled.complete and pooled.settings["allow_mixed"] is True


def test_same_env_under_another_shape_is_not_a_mix(serve: Any) -> None:
    single = serve(cartpole).address
    vector = serve(lambda: gym.vector.SyncVectorEnv([cartpole] * 2)).address  # (no spec id)
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [single, vector], episodes=6, seed=0)
    assert result.complete and result.events == []
    assert result.settings["env_id"] == "CartPole-v1"


def test_an_endpoint_that_comes_up_serving_another_env_is_left_out(serve: Any) -> None:
    pole = serve(cartpole).address
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        late = f"127.0.0.1:{probe.getsockname()[1]}"
    servers: list[rlmesh.EnvServer] = []

    class StartTheOtherEnv(rlmesh.Hooks):
        """On the first episode, bring the second endpoint up and wait until it is tried."""

        def on_episode_start(self, index: int, *args: Any) -> None:
            if servers:
                return
            servers.append(rlmesh.EnvServer(lambda: gym.make("MountainCar-v0"), late).start())
            deadline = time.monotonic() + 10
            while servers[0].stats["sessions"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)

    try:
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [pole, late], episodes=6, seed=0,
                                 hooks=StartTheOtherEnv(), connect_timeout=10)
    finally:
        for server in servers:
            server.shutdown()
    assert result.complete and {e.endpoint for e in result.episodes} == {pole}
    mismatches = [e for e in result.events if e["kind"] == "endpoint_mismatch"]
    assert len(mismatches) == 1 and mismatches[0]["endpoint"] == late
    assert "MountainCar-v0" in mismatches[0]["message"]


def test_cli_eval_refuses_a_mix_unless_allowed(serve: Any, tmp_path: Path) -> None:
    pole, counter = serve(cartpole).address, serve(CounterEnv).address
    refused = rlmesh_cmd("eval", pole, counter, "--episodes", "4", "-q")
    assert refused.returncode == 1
    assert "different envs" in refused.stderr and "--allow-mixed" in refused.stderr
    assert "Traceback" not in refused.stderr
    allowed = rlmesh_cmd("eval", pole, counter, "--episodes", "4", "-q", "--allow-mixed")
    assert allowed.returncode == 0, allowed.stderr
    assert "terminated" in allowed.stdout and "truncated" in allowed.stdout  # table columns


def test_run_json_records_env_spaces_version_time_and_host(serve: Any,
                                                           tmp_path: Path) -> None:
    address = serve(cartpole).address
    out = tmp_path / "run.json"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    result = rlmesh_cmd("eval", address, "--episodes", "2", "-q", "--json", str(out))
    assert result.returncode == 0, result.stderr
    settings = RunResult.load(out).settings
    assert settings["env_id"] == "CartPole-v1"
    assert settings["observation_space"].startswith("Box(")
    assert settings["action_space"] == "Discrete(2)"
    assert settings["rlmesh_version"] == rlmesh.__version__
    assert settings["host"] == socket.gethostname()
    stamp = datetime.datetime.fromisoformat(settings["timestamp"])
    assert before <= stamp <= datetime.datetime.now(datetime.timezone.utc)
    local = rlmesh.run(rlmesh.RANDOM_SAMPLE, cartpole(), seeds=[0])
    assert local.settings["env_id"] == "CartPole-v1" and "timestamp" in local.settings


def test_eval_plot_without_matplotlib_fails_before_playing(serve: Any, tmp_path: Path) -> None:
    server = serve(cartpole)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["matplotlib"] = None  # as if it were not installed
        from rlmesh.cli import main
        sys.exit(main(["eval", {server.address!r}, "--episodes", "50", "--json",
                       {str(tmp_path / "run.json")!r}, "--plot", {str(tmp_path / "r.png")!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("rlmesh: error:") and "Traceback" not in result.stderr
    assert "matplotlib" in result.stderr and "'plot' extra" in result.stderr
    assert server.stats["sessions"] == 0  # nothing was played
    assert not (tmp_path / "run.json").exists()
