"""The uv backend for real: an isolated stack, cached, stepped, and tied to its owner."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlmesh
from rlmesh.errors import SandboxError
from rlmesh.numpy import SandboxBuild, SandboxEnv, SandboxVectorEnv
from rlmesh.sandbox.cache import COMPLETE, entries
from tests.sandbox.conftest import OLD_NUMPY, UV
from tests.support.processes import alive, kill_group, rlmesh_cmd, wait_dead, wait_for

pytestmark = [pytest.mark.timeout(300),
              # check_env warns about CartPole's unbounded Box; the bounds are Gymnasium's own
              pytest.mark.filterwarnings("ignore:.*infinity.*:UserWarning")]


def _pid(env: SandboxEnv | SandboxVectorEnv) -> int:
    return int(env.sandbox.container_id.removeprefix("pid:"))


def test_server_runs_its_own_numpy_and_passes_check_env(probe_dir: Path) -> None:
    assert np.__version__.startswith("2.")  # the client's stack
    with SandboxEnv("probe_env:make", build=OLD_NUMPY, runtime=UV) as env:
        obs, info = env.reset(seed=3)
        assert info["numpy"].startswith("1."), info  # the server's stack
        assert env.observation_space.contains(obs)
        assert env.sandbox.backend == "uv"
        assert env.sandbox.requested_source == "probe_env:make"
        assert env.sandbox.resolved_source == "gym://probe_env:make"
        assert env.sandbox.address.startswith("unix://")
        env_dir = Path(env.sandbox.environment)
        assert (env_dir / COMPLETE).is_file()
        installed = list((env_dir / "lib").glob("python3.*/site-packages/rlmesh"))
        assert installed and not installed[0].is_symlink()  # a wheel, not editable
        check_env(env, skip_render_check=True)
        pid = _pid(env)
        assert alive(pid)
    assert wait_dead([pid], within=10) == []
    assert not os.path.exists(env.sandbox.address.removeprefix("unix://"))


def test_second_start_reuses_the_environment(probe_dir: Path) -> None:
    with SandboxEnv("probe_env:make", build=OLD_NUMPY, runtime=UV) as first:
        env_dir = Path(first.sandbox.environment)
    marker = (env_dir / COMPLETE).stat()
    listed = [entry.path for entry in entries()]
    with SandboxEnv("probe_env:make", build=SandboxBuild(packages=["numpy<2", "numpy<2"]),
                    runtime=UV) as second:
        assert Path(second.sandbox.environment) == env_dir
        assert second.reset(seed=0)[1]["numpy"].startswith("1.")
    again = (env_dir / COMPLETE).stat()
    assert (again.st_ino, again.st_mtime_ns) == (marker.st_ino, marker.st_mtime_ns)
    assert [entry.path for entry in entries()] == listed  # nothing new was built


def test_vector_env_and_plain_values(probe_dir: Path) -> None:
    with SandboxVectorEnv("probe_env:make", 3, build=OLD_NUMPY, runtime=UV) as envs:
        obs, _ = envs.reset(seed=[0, 1, 2])
        assert obs.shape == (3, 4)
        for _ in range(20):
            obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert rewards.shape == terminated.shape == truncated.shape == (3,)
        assert obs.dtype == np.float32
        pid = _pid(envs)
    assert wait_dead([pid], within=10) == []
    with rlmesh.SandboxEnv("probe_env:make", build=OLD_NUMPY, runtime=UV) as env:
        obs, info = env.reset(seed=0)
        assert isinstance(obs, list) and info["numpy"].startswith("1.")
        env.step(0)


def test_unresolvable_requirement_fails_with_uvs_message(sandbox_cache: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_OFFLINE", "1")  # no registry traffic: uv resolves from its cache
    with pytest.raises(SandboxError) as raised:
        SandboxEnv("CartPole-v1", build=SandboxBuild(packages=["gymnasium<0.1"]), runtime=UV)
    message = str(raised.value)
    assert "uv exited" in message and "gymnasium" in message
    assert "unsatisfiable" in message or "No solution found" in message


def test_server_dies_with_its_owner(probe_dir: Path, tmp_path: Path) -> None:
    owner = tmp_path / "owner.py"
    owner.write_text(textwrap.dedent("""
        import sys, time
        from rlmesh.numpy import SandboxBuild, SandboxEnv, SandboxRuntime
        env = SandboxEnv("probe_env:make", build=SandboxBuild(packages=["numpy<2"]),
                         runtime=SandboxRuntime(backend="uv"))
        print(env.sandbox.container_id, env.sandbox.address, flush=True)
        time.sleep(600)
    """))
    process = subprocess.Popen([sys.executable, str(owner)], stdout=subprocess.PIPE, text=True,
                               cwd=probe_dir, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        pid, address = int(line[0].removeprefix("pid:")), line[1]
        assert alive(pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert wait_dead([pid], within=15) == []
        assert wait_for(lambda: not os.path.exists(address.removeprefix("unix://")), 5)
    finally:
        kill_group(process)
        if process.stdout is not None:
            process.stdout.close()


def test_cli_serve_with_is_a_supervisor(probe_dir: Path, tmp_path: Path) -> None:
    socket_path, ready = tmp_path / "env.sock", tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmesh", "serve", "probe_env:make", "--with", "numpy<2",
         "--address", f"unix://{socket_path}", "--ready-file", str(ready),
         "--max-sessions", "2"],
        cwd=probe_dir, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(ready.exists, within=240), "the isolated server never got ready"
        with rlmesh.numpy.RemoteEnv(ready.read_text().strip()) as env:
            assert env.reset(seed=0)[1]["numpy"].startswith("1.")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert not socket_path.exists()
    finally:
        kill_group(process)
        if process.stderr is not None:
            process.stderr.close()


def test_envs_list_and_prune_see_the_cache(probe_dir: Path, sandbox_cache: Path) -> None:
    with SandboxEnv("probe_env:make", build=OLD_NUMPY, runtime=UV) as env:
        key = Path(env.sandbox.environment).name
    environment = {**os.environ, "RLMESH_CACHE_DIR": str(sandbox_cache)}
    listed = rlmesh_cmd("envs", "list", env=environment)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key))
    assert "numpy<2" in line
    kept = rlmesh_cmd("envs", "prune", "--older-than-days", "3650", env=environment)
    assert kept.returncode == 0 and kept.stdout.startswith("removed 0 ")
    assert (sandbox_cache / "envs" / key / COMPLETE).is_file()
    bad = rlmesh_cmd("envs", "sweep", env=environment)
    assert bad.returncode == 1 and "list or prune" in bad.stderr


PROBE_MODEL = '''
import numpy
import rlmesh.numpy


class Lean(rlmesh.numpy.Model):
    """Pushes the cart toward the pole's lean; says which numpy it runs on."""

    def load(self):
        self.numpy = numpy.__version__

    def predict(self, observation):
        return int(observation[2] > 0)
'''


def test_sandbox_model_serves_a_model_from_its_own_stack(probe_dir: Path) -> None:
    import gymnasium as gym

    (probe_dir / "probe_model.py").write_text(PROBE_MODEL)
    lean = rlmesh.numpy.Model(lambda o: int(o[2] > 0))
    expected = rlmesh.run(lean, gym.make("CartPole-v1"), seeds=[4, 5]).rewards
    with rlmesh.numpy.SandboxModel("probe_model:Lean", runtime=UV, build=OLD_NUMPY) as model:
        assert model.sandbox.backend == "uv" and model.contract["kind"] == "model"
        pid = int(model.sandbox.container_id.removeprefix("pid:"))
        assert alive(pid)
        assert rlmesh.run(model, gym.make("CartPole-v1"), seeds=[4, 5]).rewards == expected
    assert wait_dead([pid], within=10) == [], "the sandbox outlived close()"
    with pytest.raises(TypeError, match="build= and runtime= only"):
        rlmesh.numpy.SandboxModel("probe_model:Lean", runtime=UV, temperature=0.5)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_sandbox_envs_hand_out_framework_arrays(probe_dir: Path, framework: str
                                                           ) -> None:
    from tests.support.deps import need

    need(framework)
    face = importlib.import_module(f"rlmesh.{framework}")
    with face.SandboxEnv("probe_env:make", build=OLD_NUMPY, runtime=UV) as env:
        obs, info = env.reset(seed=0)
        assert type(obs).__module__.split(".")[0] in {"torch", "jax", "jaxlib"}
        assert info["numpy"].startswith("1.")
        obs = env.step(0)[0]
        assert tuple(obs.shape) == (4,)
    with face.SandboxVectorEnv("probe_env:make", 2, build=OLD_NUMPY, runtime=UV) as envs:
        obs, _ = envs.reset(seed=[1, 2])
        assert tuple(obs.shape) == (2, 4)
        assert type(obs).__module__.split(".")[0] in {"torch", "jax", "jaxlib"}
