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
from rlmesh.sandbox.uv import with_compat_pins
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


def test_an_old_gym_that_uv_cannot_install_fails_with_uvs_message_and_the_way_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gym 0.21 cannot be installed by uv: the error carries uv's words and the way out."""
    from rlmesh.errors import SandboxError
    from rlmesh.sandbox.uv import ensure_env
    from rlmesh.sandbox.wheel import RlmeshPackage

    fake = tmp_path / "uv"  # a uv that creates environments and fails gym 0.21's build
    fake.write_text("#!/bin/sh\n"
                    "if [ \"$1\" = venv ]; then for last; do :; done; mkdir -p \"$last/bin\"; "
                    "exit 0; fi\n"
                    "echo 'error: Failed to build `gym==0.21.0`: invalid metadata' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("RLMESH_UV", str(fake))
    monkeypatch.setenv("RLMESH_CACHE_DIR", str(tmp_path / "cache"))
    package = RlmeshPackage("rlmesh-0-py3-none-any.whl", "test")
    with pytest.raises(SandboxError, match=r"(?s)Failed to build `gym==0\.21\.0`.*old-gym\.md"):
        ensure_env(["gym==0.21.0"], compat="gym", package=package)
    with pytest.raises(SandboxError) as plain:
        ensure_env(["gym==0.26.2"], compat="gym", package=package)
    assert "old-gym.md" not in str(plain.value)
