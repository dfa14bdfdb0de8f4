"""``rlmesh ray serve|status|stop`` and ``rlmesh eval --fleet`` against a local Ray cluster."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

import rlmesh
from tests.support.processes import alive, rlmesh_cmd, wait_dead

pytestmark = [
    pytest.mark.ray,
    pytest.mark.timeout(240),
    # JAX (imported by other tests of the session) warns at every fork; the children exec at once
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
]


def test_a_detached_fleet_from_the_command_line(ray_cluster: Any, tmp_path: Any) -> None:
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
    name = "rlmesh-cli-fleet"
    started = rlmesh_cmd("ray", "serve", "CartPole-v1", "--servers", "2", "--cpus-per-server",
                         "0.25", "--name", name, "--detached", env=env, timeout=150)
    try:
        assert started.returncode == 0, started.stderr
        lines = started.stdout.split()
        addresses = [line for line in lines if line.startswith("127.0.0.1:")]
        token = next(line for line in lines if line.startswith("RLMESH_TOKEN="))
        assert len(addresses) == 2 and token.split("=", 1)[1]
        status = rlmesh_cmd("ray", "status", name, "--json", env=env)
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)
        assert [row["address"] for row in rows] == addresses
        assert all(row["alive"] and alive(row["pid"]) for row in rows)
        run = tmp_path / "run.json"
        evaluated = rlmesh_cmd("eval", "--fleet", name, "--episodes", "4", "--quiet",
                               "--json", str(run), env=env, timeout=150)
        assert evaluated.returncode == 0, evaluated.stderr
        result = rlmesh.RunResult.load(run)
        assert sorted(e.seed for e in result.episodes) == [0, 1, 2, 3]
        assert {e.endpoint for e in result.episodes} <= set(addresses)
    finally:
        stopped = rlmesh_cmd("ray", "stop", name, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_dead([row["pid"] for row in rows], within=30) == []
    missing = rlmesh_cmd("ray", "status", name, env=env)
    assert missing.returncode != 0 and "no rlmesh fleet" in missing.stderr
