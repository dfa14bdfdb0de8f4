"""The issue's own command: ``rlmesh serve CartPole-v1 --with 'gym==0.26.2' --compat gym``.

The supervisor builds (or reuses) a uv environment holding the old ``gym`` package, with
``numpy<2`` added for it, and serves its CartPole as a Gymnasium env to a client that has
Gymnasium 1.x, numpy 2 and no ``gym`` of its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlmesh.numpy
from rlmesh.sandbox.oldstacks import is_old_gym, with_compat_pins
from tests.support.processes import kill_group, wait_for

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore:.*infinity.*:UserWarning")]


def test_compat_gym_adds_numpy_below_2_unless_numpy_is_asked_for() -> None:
    assert with_compat_pins(["gym==0.26.2"], "gym") == ["gym==0.26.2", "numpy<2"]
    assert with_compat_pins(["gym==0.26.2", "numpy==1.24.4"], "gym") == [
        "gym==0.26.2", "numpy==1.24.4"]
    assert with_compat_pins(["gym", "NumPy>=1.23 ; python_version>'3'"], "gym")[-1].startswith(
        "NumPy")
    assert with_compat_pins(["gym==0.26.2"], None) == ["gym==0.26.2"]
    assert [r for r in ("gym==0.21.0", "gym<0.22", "GYM ~= 0.25.1", "gym==0.26.2", "gym",
                        "gymnasium==0.21.0", "gym>=0.21") if is_old_gym(r)] == [
        "gym==0.21.0", "gym<0.22", "GYM ~= 0.25.1"]


def test_old_gym_cartpole_served_from_its_own_stack(sandbox_cache: Path, tmp_path: Path
                                                    ) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--with", "gym==0.26.2",
         "--compat", "gym", "--address", f"unix://{tmp_path}/env.sock",
         "--ready-file", str(ready)],
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(ready.exists, within=240), "the old-gym server never got ready"
        with rlmesh.numpy.RemoteEnv(ready.read_text().strip()) as env:
            assert env.spec is not None and env.spec.id == "gym/CartPole-v1"
            assert env.metadata["gym_version"] == "0.26.2"
            check_env(env, skip_render_check=True)
            # The same dynamics as Gymnasium's CartPole, step for step, bit for bit.
            local = gym.make("CartPole-v1")
            obs, _ = env.reset(seed=3)
            expected, _ = local.reset(seed=3)
            np.testing.assert_array_equal(obs, expected)
            for step in range(600):
                action = step % 3 % 2
                got, expected_step = env.step(action), local.step(action)
                np.testing.assert_array_equal(got[0], expected_step[0])
                assert got[1:4] == expected_step[1:4]
                if got[2] or got[3]:
                    break
            assert got[2] and not got[3]  # a fall: terminated, not truncated
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        kill_group(process)
        if process.stderr is not None:
            process.stderr.close()


RECORD_021 = """
import json, sys
import gym
from gym.wrappers import TimeLimit
env = TimeLimit(gym.make("CartPole-v1").env, max_episode_steps=8)
env.seed(5)
obs = [env.reset().tolist()]
flags = []
for step in range(12):
    o, r, done, info = env.step(step % 2)
    obs.append(o.tolist())
    flags.append([done, bool(info.get("TimeLimit.truncated", False))])
    if done:
        break
print(json.dumps({"version": gym.__version__, "obs": obs, "flags": flags}))
"""


def test_gym_0_21_is_installed_with_pip_and_served_as_gymnasium(sandbox_cache: Path,
                                                                 tmp_path: Path) -> None:
    """uv refuses gym 0.21's metadata; pip with the build tools of its day installs it."""
    import json

    from rlmesh.sandbox.uv import ensure_env, env_python

    environment = ensure_env(["gym==0.21.0"], compat="gym")  # the stack the CLI will reuse
    recorded = json.loads(subprocess.run(
        [str(env_python(environment)), "-c", RECORD_021], capture_output=True, text=True,
        timeout=120, check=True).stdout)
    assert recorded["version"] == "0.21.0"
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--with", "gym==0.21.0",
         "--compat", "gym", "--max-episode-steps", "8", "--address",
         f"unix://{tmp_path}/env.sock", "--ready-file", str(ready)],
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(ready.exists, within=240), "the gym 0.21 server never got ready"
        with rlmesh.numpy.RemoteEnv(ready.read_text().strip()) as env:
            assert env.metadata["gym_version"] == "0.21.0"
            obs, _ = env.reset(seed=5)  # seeds through the old env.seed(5)
            seen = [obs.tolist()]
            for step in range(len(recorded["flags"])):
                obs, _, terminated, truncated, _ = env.step(step % 2)
                seen.append(obs.tolist())
                done, limit = recorded["flags"][step]
                assert (terminated, truncated) == (done and not limit, done and limit)
            assert seen == recorded["obs"]  # bit for bit (float32 values as Python floats)
            assert recorded["flags"][-1] == [True, True] and truncated and not terminated
            check_env(env, skip_render_check=True)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        kill_group(process)
        if process.stderr is not None:
            process.stderr.close()
