"""rlmesh's server side inside old stacks, driven from this venv (gymnasium 1.x, numpy 2).

Two venvs, built once a session (tests/compat/conftest.py): the old ``gym`` 0.26.2 with
numpy 1.x, served with ``rlmesh serve --compat gym``; and the oldest Gymnasium and numpy
that rlmesh's server side supports, serving a Gymnasium env as it is. Each trajectory is
compared bit for bit with the same env stepped inside its own venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlmesh.numpy import RemoteEnv
from rlmesh.spacetypes.available import SERVER_GYMNASIUM, SERVER_NUMPY
from tests.support.processes import kill_group, wait_for

pytestmark = pytest.mark.timeout(400)

OLD_GYM = ("gym==0.26.2", "numpy<2")
OLDEST = (f"gymnasium=={'.'.join(map(str, SERVER_GYMNASIUM))}",
          f"numpy=={'.'.join(map(str, SERVER_NUMPY))}.*")
STEPS = 12
EPISODES = {"balanced": [0, 1] * 8, "falling": [1] * 16}
"""Fixed actions: alternating ones last until the time limit, pushing one way falls early."""

_LOCAL_RUN = """
import json, sys, numpy as np
import {package} as gym
env = gym.make("CartPole-v1", max_episode_steps={steps})
result = {{}}
for name, actions in json.loads(sys.argv[2]).items():
    obs, _ = env.reset(seed=0)
    trajectory, flags = [obs], []
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        trajectory.append(obs)
        flags.append([bool(terminated), bool(truncated)])
        if terminated or truncated:
            break
    np.save(f"{{sys.argv[1]}}/{{name}}.npy", np.stack(trajectory))
    result[name] = flags
print(json.dumps(result))
"""


def _local_run(python: Path, package: str, out: Path) -> dict[str, list[list[bool]]]:
    """The episodes stepped in the stack's own venv; observations saved as .npy in ``out``."""
    script = textwrap.dedent(_LOCAL_RUN.format(package=package, steps=STEPS))
    done = subprocess.run([str(python), "-W", "ignore", "-c", script, str(out),
                           json.dumps(EPISODES)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    flags: dict[str, list[list[bool]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return flags


class Served:
    """``rlmesh serve ...`` run with a stack's python; stopped (whole group) afterwards."""

    def __init__(self, python: Path, tmp: Path, *args: str) -> None:
        self.ready = tmp / "ready"
        self.log = tmp / "serve.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(python), "-m", "rlmesh", "serve", *args, "--address", "127.0.0.1:0",
                 "--ready-file", str(self.ready)], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def address(self) -> str:
        started = wait_for(lambda: self.ready.exists() or self.process.poll() is not None, 60)
        assert started and self.ready.exists(), self.log.read_text()[-3000:]
        return self.ready.read_text().strip()

    def stop(self) -> None:
        kill_group(self.process)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    servers: list[Served] = []

    def start(python: Path, *args: str) -> Served:
        server = Served(python, tmp_path, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _drive_and_compare(address: str, out: Path, flags: dict[str, list[list[bool]]]) -> None:
    with RemoteEnv(address) as env:
        for name, actions in EPISODES.items():
            expected = np.load(out / f"{name}.npy")
            obs, _ = env.reset(seed=0)
            got, got_flags = [obs], []
            for a in actions:
                obs, _, terminated, truncated, _ = env.step(a)
                got.append(obs)
                got_flags.append([terminated, truncated])
                if terminated or truncated:
                    break
            stacked = np.stack(got)
            assert stacked.dtype == expected.dtype == np.float32
            assert stacked.tobytes() == expected.tobytes(), name
            assert got_flags == flags[name], name
        check_env(env, skip_render_check=True)


def _versions(python: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "('gym', 'gymnasium', 'numpy') if __import__('importlib.util').util.find_spec(p)}))")
    done = subprocess.run([str(python), "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def test_old_gym_is_served_as_gymnasium(stack: Any, served: Any, tmp_path: Path) -> None:
    python = stack("gym-0.26.2", *OLD_GYM)
    versions = _versions(python)
    assert versions["gym"] == "0.26.2" and versions["numpy"].startswith("1.")
    flags = _local_run(python, "gym", tmp_path)
    assert flags["balanced"][-1] == [False, True] and len(flags["balanced"]) == STEPS
    assert flags["falling"][-1] == [True, False] and len(flags["falling"]) < STEPS
    server = served(python, "CartPole-v1", "--compat", "gym", "--max-episode-steps", str(STEPS))
    address = server.address()
    with RemoteEnv(address) as env:
        assert env.spec is not None and env.spec.id == "gym/CartPole-v1"
        assert env.metadata["gym_version"] == "0.26.2"
    _drive_and_compare(address, tmp_path, flags)


def test_the_oldest_supported_stack_serves(stack: Any, served: Any, tmp_path: Path) -> None:
    python = stack("oldest", *OLDEST)
    versions = _versions(python)
    assert versions["gymnasium"] == ".".join(map(str, SERVER_GYMNASIUM))
    assert versions["numpy"].startswith(".".join(map(str, SERVER_NUMPY)) + ".")
    flags = _local_run(python, "gymnasium", tmp_path)
    server = served(python, "CartPole-v1", "--max-episode-steps", str(STEPS))
    _drive_and_compare(server.address(), tmp_path, flags)


def test_the_oldest_stack_refuses_the_client_side_and_a_missing_gym(stack: Any) -> None:
    python = stack("oldest", *OLDEST)
    client = subprocess.run([str(python), "-W", "ignore", "-c", "import rlmesh.numpy"],
                            capture_output=True, text=True, timeout=60)
    assert client.returncode != 0
    assert "CompatError" in client.stderr and "needs gymnasium>=1.1" in client.stderr
    no_gym = subprocess.run([str(python), "-W", "ignore", "-m", "rlmesh", "serve",
                             "CartPole-v1", "--compat", "gym", "--address", "127.0.0.1:0"],
                            capture_output=True, text=True, timeout=60)
    assert no_gym.returncode == 1
    assert "--compat gym needs the old gym package" in no_gym.stderr
