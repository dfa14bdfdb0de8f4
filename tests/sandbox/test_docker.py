"""The Docker backend against a real daemon: containers on loopback, hardened, reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlmesh.errors import SandboxError
from rlmesh.numpy import RemoteEnv
from rlmesh.sandbox.docker import CONTAINER_PORT, DockerRunning
from rlmesh.sandbox.docker_engine import docker
from rlmesh.sandbox.docker_reap import reap_orphans
from rlmesh.sandbox.options import SandboxRuntime
from tests.support import docker as support

pytestmark = [pytest.mark.timeout(300),
              # check_env warns about CartPole's unbounded Box; the bounds are Gymnasium's own
              pytest.mark.filterwarnings("ignore:.*infinity.*:UserWarning")]
support.require_docker()


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    support.remove_test_artifacts()


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRunning]:
    """One CartPole sandbox for the module, run as uid 1000 with a read-only volume."""
    shared = tmp_path_factory.mktemp("volume")
    runtime = SandboxRuntime(volumes=[f"{shared}:/data:ro"], user="1000:1000")
    running = support.runner().start(support.launch("CartPole-v1", runtime=runtime),
                                     timeout=240)
    yield running
    running.stop()


def test_an_env_id_is_served_and_passes_check_env(cartpole: DockerRunning) -> None:
    assert cartpole.address.startswith("127.0.0.1:")
    with RemoteEnv(cartpole.address, token=cartpole.token) as env:
        check_env(env, skip_render_check=True)
        obs, _ = env.reset(seed=7)
    local = gym.make("CartPole-v1")
    expected, _ = local.reset(seed=7)
    np.testing.assert_array_equal(obs, expected)


def test_the_container_is_hardened_and_published_on_loopback_only(
        cartpole: DockerRunning) -> None:
    found = support.inspect(cartpole.ident)
    host = found["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["IpcMode"] != "host" and host["PidMode"] != "host"
    bindings = found["NetworkSettings"]["Ports"][f"{CONTAINER_PORT}/tcp"]
    assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert cartpole.address == f"127.0.0.1:{bindings[0]['HostPort']}"
    labels = found["Config"]["Labels"]
    assert labels["rlmesh.sandbox.owner.pid"] == str(os.getpid())
    assert found["Config"]["User"] == "1000:1000"
    (mount,) = found["Mounts"]
    assert mount["Destination"] == "/data" and mount["RW"] is False


def test_same_host_memory_falls_back_to_the_socket_across_the_boundary(
        cartpole: DockerRunning) -> None:
    with RemoteEnv(cartpole.address, token=cartpole.token) as env:
        # The container has its own pid namespace: the server declines the region.
        assert env.contract["shm"] is False and env.contract["shm_link"] is False
        env.reset(seed=0)
        for _ in range(20):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()


def test_make_keywords_arrive_at_run_time_without_a_rebuild(cartpole: DockerRunning) -> None:
    running = support.runner().start(
        support.launch("CartPole-v1", make_kwargs={"max_episode_steps": 3}), timeout=120)
    try:
        assert running.environment == cartpole.environment  # the same image
        with RemoteEnv(running.address, token=running.token) as env:
            env.reset(seed=0)
            flags = [env.step(0)[3] for _ in range(3)]
        assert flags == [False, False, True]
    finally:
        running.stop()
    assert not support.exists(running.ident)


def test_stop_removes_the_container() -> None:
    running = support.runner().start(support.launch("CartPole-v1"), timeout=120)
    assert running.alive()
    running.stop()
    running.stop()  # idempotent
    assert not support.exists(running.ident)


def test_a_server_that_exits_fails_the_start_with_its_log_tail() -> None:
    before = set(docker(["ps", "-aq", "--filter",
                         f"label={support.TEST_LABEL}={support.RUN_ID}"]).stdout.split())
    with pytest.raises(SandboxError, match="exited") as caught:
        support.runner().start(support.launch("NoSuchEnvAnywhere-v0"), timeout=120)
    assert "NoSuchEnvAnywhere" in str(caught.value)  # the server's own message, from its log
    after = set(docker(["ps", "-aq", "--filter",
                        f"label={support.TEST_LABEL}={support.RUN_ID}"]).stdout.split())
    assert after <= before  # the failed container was removed


def test_a_missing_image_is_refused_without_pulling() -> None:
    with pytest.raises(SandboxError, match="not available locally"):
        support.runner().start(support.launch("image://rlmesh-absent-image:never"), timeout=30)


def test_bad_runtime_options_fail_before_any_container(tmp_path: Path) -> None:
    for runtime in (SandboxRuntime(user="root; rm -rf /"),
                    SandboxRuntime(volumes=["relative:/data"]),
                    SandboxRuntime(volumes={str(tmp_path / "absent"): "/data"}),
                    SandboxRuntime(devices=["/etc/passwd"]),
                    SandboxRuntime(gpus="all --privileged")):
        with pytest.raises(ValueError):
            support.runner().start(support.launch("CartPole-v1", runtime=runtime), timeout=30)


_OWNER = """
import subprocess, sys
from rlmesh.sandbox.docker_reap import owner_labels
labels = owner_labels() | {%r: %r}
args = ["docker", "run", "-d", "--cap-drop", "ALL"]
for key, value in labels.items():
    args += ["--label", f"{key}={value}"]
ident = subprocess.run([*args, %r, "sleep", "300"], capture_output=True, text=True,
                       check=True).stdout.strip()
print(ident, flush=True)
__import__("time").sleep(300)
"""


def test_an_orphan_of_a_dead_owner_is_reaped_and_a_live_owners_is_not() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER % (support.TEST_LABEL, support.RUN_ID, support.base_image())],
        stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        orphan = owner.stdout.readline().strip()
        assert orphan and support.exists(orphan)
        assert orphan not in {i[:len(orphan)] for i in reap_orphans()}  # owner still alive
        assert support.exists(orphan)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
    reaped = reap_orphans()
    assert any(ident.startswith(orphan) for ident in reaped)
    assert not support.exists(orphan)


def test_sandbox_env_runs_on_docker_and_its_port_wants_the_token() -> None:
    """The public face: SandboxEnv on the Docker backend is a live, token-guarded RemoteEnv."""
    import rlmesh
    import rlmesh.numpy
    from rlmesh.errors import AuthenticationError

    before = set(docker(["images", "-q", "rlmesh-sandbox"]).stdout.split())
    runtime = SandboxRuntime(backend="docker", start_timeout_seconds=240)
    build = rlmesh.SandboxBuild(base_image=support.base_image())
    try:
        with rlmesh.numpy.SandboxEnv("gym://CartPole-v1", build=build, runtime=runtime,
                                     max_episode_steps=5) as env:
            info = env.sandbox
            assert (info.backend, info.resolved_source) == ("docker", "gym://CartPole-v1")
            assert support.exists(info.container_id)
            check_env(env, skip_render_check=True)
            env.reset(seed=1)
            steps = [env.step(0)[3] for _ in range(5)]
            assert steps[-1] is True  # max_episode_steps reached make() in the container
            with pytest.raises(AuthenticationError):
                RemoteEnv(info.address, token="not-the-token").reset()
        assert not support.exists(info.container_id)
    finally:
        after = set(docker(["images", "-q", "rlmesh-sandbox"]).stdout.split())
        if after - before:
            docker(["rmi", "-f", *sorted(after - before)], check=False, timeout=120)
