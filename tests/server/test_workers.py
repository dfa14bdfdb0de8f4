"""``EnvServer(..., workers=N)`` and ``rlmesh serve --workers N``: one TCP port, N processes.

The kernel spreads sessions over the processes (``SO_REUSEPORT``); each contract names the
process serving it (``contract["server"]["pid"]``). The worker children stop with the server,
and on their own when the server process is SIGKILLed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import ConnectionLostError, EnvServer, RLMeshError, ServeOptions
from rlmesh.numpy import RemoteEnv
from tests.support.processes import alive, kill_stragglers, live_children, wait_dead

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)"),
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# -- processes ---------------------------------------------------------------------------------


@pytest.fixture
def clients() -> Iterator[Callable[[str], RemoteEnv]]:
    """Open RemoteEnvs; all are closed after the test (before the servers stop)."""
    opened: list[RemoteEnv] = []

    def connect(address: str) -> RemoteEnv:
        env = RemoteEnv(address, connect_timeout=10, timeout=10)
        opened.append(env)
        return env

    yield connect
    for env in opened:
        with contextlib.suppress(Exception):
            env.close()


def check_cartpole_session(env: RemoteEnv, seed: int) -> None:
    """A session behaves exactly as a local CartPole with the same seed and actions."""
    local = gym.make("CartPole-v1")
    try:
        obs, _ = env.reset(seed=seed)
        expected, _ = local.reset(seed=seed)
        assert obs.dtype == expected.dtype and obs.tobytes() == expected.tobytes()
        for t in range(5):
            action = np.int64((seed + t) % 2)
            got, want = env.step(action), local.step(action)
            assert got[0].tobytes() == want[0].tobytes()
            assert got[1:4] == want[1:4]
    finally:
        local.close()


def connect_until_worker(address: str, parent: int, connect: Any) -> tuple[RemoteEnv, set[int]]:
    """Open sessions until one is served by a process other than ``parent``."""
    seen: set[int] = set()
    for _ in range(32):
        env = connect(address)
        pid = env.contract["server"]["pid"]
        seen.add(pid)
        if pid != parent:
            return env, seen
    raise AssertionError(f"32 sessions, all served by the parent {parent}")


def pool_directory(worker: int) -> str:
    """The worker pool's private directory (the worker's stderr is a log file in it)."""
    return os.path.dirname(os.readlink(f"/proc/{worker}/fd/2"))


# == EnvServer(workers=N) ======================================================================


def test_sessions_spread_over_processes_and_all_work(serve: Any, clients: Any) -> None:
    server = serve("CartPole-v1", workers=2)
    workers = server.worker_pids
    assert len(workers) == 1 and all(alive(pid) for pid in workers)
    assert workers[0] in live_children(os.getpid())
    envs = [clients(server.address) for _ in range(16)]
    pids = [env.contract["server"]["pid"] for env in envs]
    assert set(pids) <= {os.getpid(), *workers}, pids
    assert len(set(pids)) > 1, f"all 16 sessions went to one process: {pids}"
    for seed, env in enumerate(envs):
        check_cartpole_session(env, seed)


def test_options_reach_the_worker_processes(serve: Any, clients: Any) -> None:
    options = ServeOptions(max_message_bytes=200_000, same_host=False)
    server = serve("CartPole-v1", workers=2, options=options)
    seen: set[int] = set()
    for _ in range(24):
        env = clients(server.address)
        seen.add(env.contract["server"]["pid"])
        assert env.contract["max_message_bytes"] == 200_000
        assert env.contract["shm"] is False
        if len(seen) > 1:
            break
    assert seen == {os.getpid(), *server.worker_pids}


def test_shutdown_stops_every_worker(clients: Any) -> None:
    server = EnvServer("CartPole-v1", "127.0.0.1:0", workers=3).start()
    workers = list(server.worker_pids)
    try:
        assert len(workers) == 2 and all(alive(pid) for pid in workers)
        envs = [clients(server.address) for _ in range(8)]
        for env in envs:
            env.reset(seed=0)
        start = time.monotonic()
        server.shutdown()  # with sessions still open, some of them in the workers
        assert time.monotonic() - start < 5
        assert [pid for pid in workers if alive(pid)] == []
        assert not live_children(os.getpid()) & set(workers)
        for env in envs:
            with pytest.raises(RLMeshError):
                env.step(np.int64(0))
    finally:
        server.shutdown()
        kill_stragglers(workers)


def test_workers_outlive_the_thread_that_built_the_server(clients: Any) -> None:
    """The workers belong to the server, not to the thread that happened to construct it."""
    built: list[EnvServer] = []
    thread = threading.Thread(target=lambda: built.append(
        EnvServer("CartPole-v1", "127.0.0.1:0", workers=2)))
    thread.start()
    thread.join()
    server = built[0].start()
    workers = list(server.worker_pids)
    try:
        time.sleep(0.3)
        assert [pid for pid in workers if alive(pid)] == workers, (
            "the worker died when the thread that built the server exited")
        env, _ = connect_until_worker(server.address, os.getpid(), clients)
        check_cartpole_session(env, 1)
    finally:
        server.shutdown()
        kill_stragglers(workers)


def test_instance_env_with_workers_is_a_type_error() -> None:
    env = gym.make("CartPole-v1")
    before = live_children(os.getpid())
    try:
        with pytest.raises(TypeError, match="factory"):
            EnvServer(env, "127.0.0.1:0", workers=2)
    finally:
        env.close()
    assert live_children(os.getpid()) - before == set()


def test_unix_address_with_workers_is_a_value_error() -> None:
    directory = tempfile.mkdtemp(prefix="rlm-")
    path = os.path.join(directory, "s.sock")
    before = live_children(os.getpid())
    try:
        with pytest.raises(ValueError, match="TCP"):
            EnvServer("CartPole-v1", f"unix://{path}", workers=2)
        with pytest.raises(ValueError, match="TCP"):
            EnvServer("CartPole-v1", path=path, workers=2)
        assert not os.path.exists(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.rmdir(directory)
    with pytest.raises(ValueError):
        EnvServer("CartPole-v1", "127.0.0.1:0", workers=0)
    assert live_children(os.getpid()) - before == set()


# == rlmesh serve --workers N ==================================================================


def test_cli_workers_serve_and_die_with_sigkilled_parent(spawn: Any, clients: Any) -> None:
    server = spawn("CartPole-v1", extra_args=["--workers", "2"])
    workers = sorted(live_children(server.pid))
    directory = pool_directory(workers[0]) if len(workers) == 1 else ""
    try:
        assert len(workers) == 1, f"expected one worker child, found {workers}"
        assert os.path.basename(directory).startswith("rlmesh-workers-"), directory
        env, seen = connect_until_worker(server.address, server.pid, clients)
        assert seen <= {server.pid, *workers}
        assert env.contract["server"]["pid"] == workers[0]
        check_cartpole_session(env, 3)
        server.process.kill()  # SIGKILL: no cleanup code runs in the parent
        server.process.wait(5)
        left = wait_dead(workers, 5.0)
        assert left == [], f"worker {left} outlived its SIGKILLed parent"
        with pytest.raises(ConnectionLostError):
            env.step(np.int64(0))
    finally:
        kill_stragglers(workers)
        if directory:  # nobody is left to remove it after a SIGKILL
            shutil.rmtree(directory, ignore_errors=True)


def test_cli_workers_stop_with_sigterm(spawn: Any, clients: Any) -> None:
    server = spawn("CartPole-v1", extra_args=["--workers", "3"])
    workers = sorted(live_children(server.pid))
    directory = pool_directory(workers[0]) if workers else ""
    try:
        assert len(workers) == 2
        env, _ = connect_until_worker(server.address, server.pid, clients)
        env.reset(seed=0)
        assert server.stop() is not None
        assert wait_dead(workers, 2.0) == []
        assert not os.path.exists(directory), "a clean stop left the pool directory"
    finally:
        kill_stragglers(workers)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def test_cli_workers_with_unix_address_fails_cleanly() -> None:
    directory = tempfile.mkdtemp(prefix="rlm-")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--workers", "2",
             "--address", f"unix://{directory}/s.sock"],
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert result.returncode == 1, result.stderr.decode()
        assert "TCP" in result.stderr.decode()
        assert os.listdir(directory) == []
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_worker_pids_empty_without_workers(serve: Any) -> None:
    server = serve("CartPole-v1")
    assert server.worker_pids == []
    with RemoteEnv(server.address) as env:
        assert env.contract["server"]["pid"] == os.getpid()
    assert rlmesh.__version__ == env.contract["server"]["version"]
