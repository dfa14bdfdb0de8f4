"""The in-process transport, and client and server logic over it (no sockets).

``memory://NAME`` endpoints let the channel, the server session, vector envs and evaluation
run in one process without a socket; the same behaviour over real sockets is covered by the
integration and fault suites.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.envs import CounterEnv
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.transport import memory

pytestmark = pytest.mark.timeout(30)

_names = itertools.count()


@pytest.fixture
def endpoint() -> Iterator[Callable[..., rlmesh.EnvServer]]:
    """Start an EnvServer at a fresh ``memory://`` address; shut down after the test."""
    servers: list[rlmesh.EnvServer] = []

    def start(env: Any, **kwargs: Any) -> rlmesh.EnvServer:
        server = rlmesh.EnvServer(env, f"memory://test-{next(_names)}", **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.shutdown()


# -- the transport ----------------------------------------------------------------------------


def test_a_pair_passes_copied_frames_in_order() -> None:
    a, b = memory.pair(1024)
    body = bytearray(b"xyz")
    a.send(b"h1", [body, memoryview(b"!!")], 5)
    body[:] = b"___"  # the sender reuses its buffer: the frame holds a copy
    a.send(b"h2", [], 0)
    assert b.recv() == (b"h1", bytearray(b"xyz!!"))
    assert b.recv() == (b"h2", None)
    b.send(b"back", [], 0)
    assert a.recv() == (b"back", None)


def test_receive_times_out_and_a_closed_peer_is_a_lost_connection() -> None:
    a, b = memory.pair(1024)
    b.set_timeout(0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        b.recv()
    assert time.monotonic() - started >= 0.05
    a.send(b"last", [], 0)
    a.close()
    assert b.recv() == (b"last", None)  # what was sent before the close still arrives
    with pytest.raises(rlmesh.ConnectionLostError):
        b.recv()
    with pytest.raises(rlmesh.ConnectionLostError):
        b.send(b"x", [], 0)


def test_abort_wakes_a_receive_blocked_in_another_thread() -> None:
    _, b = memory.pair(1024)
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            b.recv()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(0.05)
    b.abort()
    thread.join(5)
    assert not thread.is_alive() and isinstance(errors[0], rlmesh.ConnectionLostError)


def test_frames_over_the_limit_are_refused() -> None:
    a, b = memory.pair(16)
    a.send(b"header", [b"x" * 64], 64)
    with pytest.raises(rlmesh.MessageTooLargeError):
        b.recv()


def test_one_name_one_endpoint() -> None:
    listener = memory.listen("unit-dup", 1024)
    try:
        with pytest.raises(OSError, match="already served"):
            memory.listen("unit-dup", 1024)
    finally:
        listener.close()
    memory.listen("unit-dup", 1024).close()  # free again once closed
    with pytest.raises(rlmesh.ConnectFailedError, match="nothing serves"):
        memory.connect("unit-dup", 1024)


# -- the client and the server session over it ------------------------------------------------


def test_a_remote_env_over_memory_steps_like_the_local_env(endpoint: Any) -> None:
    server = endpoint(lambda: gym.make("CartPole-v1"))
    local = gym.make("CartPole-v1")
    with RemoteEnv(server.address) as remote:
        assert remote.contract["shm"] is False
        assert np.array_equal(remote.reset(seed=3)[0], local.reset(seed=3)[0])
        for action in [0, 1, 1, 0, 1]:
            got, want = remote.step(action), local.step(action)
            assert np.array_equal(got[0], want[0]) and got[1:4] == want[1:4]


def test_pipelined_requests_are_answered_in_order_with_typed_errors(endpoint: Any) -> None:
    server = endpoint(lambda: gym.make("CartPole-v1"))
    channel = Channel(server.address, timeout=5)
    try:
        channel.submit(P.OP_STEP, 0)  # before any reset
        channel.submit(P.OP_RESET, 1, None)
        channel.submit(P.OP_STEP, 7)  # not in Discrete(2)
        channel.submit(P.OP_PING, "hello")
        with pytest.raises(rlmesh.ResetNeededError):
            channel.collect()
        assert len(channel.collect()) == 4  # [status, id, obs, info]
        with pytest.raises(rlmesh.InvalidActionError):
            channel.collect()
        assert channel.collect()[2] == "hello"
    finally:
        channel.close()


def test_an_instance_serves_one_session_at_a_time(endpoint: Any) -> None:
    server = endpoint(CounterEnv())
    first = RemoteEnv(server.address)
    with pytest.raises(rlmesh.EnvBusyError):
        RemoteEnv(server.address)
    first.close()
    RemoteEnv(server.address).close()


def test_a_crashed_env_is_restarted_without_a_socket(endpoint: Any) -> None:
    class Fragile(CounterEnv):
        def step(self, action: Any) -> Any:
            if self.count == 1:
                raise RuntimeError("boom")
            return super().step(action)

    server = endpoint(Fragile, options=rlmesh.ServeOptions(restart_on_error=1))
    with RemoteEnv(server.address) as env:
        env.reset(seed=0)
        env.step(0)
        _, reward, terminated, truncated, info = env.step(0)
        assert (reward, terminated, truncated) == (0.0, False, True)
        assert info["rlmesh_restart"]["error"] == "RuntimeError: boom"
    assert server.stats["restarts"] == 1


def test_the_step_deadline_answers_without_a_socket(endpoint: Any) -> None:
    class Stalls(CounterEnv):
        def step(self, action: Any) -> Any:
            time.sleep(1.0)
            return super().step(action)

    server = endpoint(Stalls, options=rlmesh.ServeOptions(step_deadline=0.1))
    with RemoteEnv(server.address, timeout=5) as env:
        env.reset()
        started = time.monotonic()
        with pytest.raises(rlmesh.StepDeadlineError):
            env.step(0)
        assert time.monotonic() - started < 0.9
    assert server.stats["deadlines"] == 1


def test_a_vector_env_of_memory_endpoints_matches_sync_vector_env(endpoint: Any) -> None:
    servers = [endpoint(lambda: gym.make("CartPole-v1")) for _ in range(3)]
    local = SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 3)
    with RemoteVectorEnv([s.address for s in servers]) as remote:
        assert np.array_equal(remote.reset(seed=5)[0], local.reset(seed=5)[0])
        rng = np.random.default_rng(0)
        for _ in range(60):
            actions = rng.integers(0, 2, size=3)
            got, want = remote.step(actions), local.step(actions)
            for a, b in zip(got[:4], want[:4], strict=True):
                assert np.array_equal(a, b)
        assert remote.get_attr("gravity") == local.get_attr("gravity")


def test_evaluate_and_a_served_model_over_memory(endpoint: Any) -> None:
    addresses = [endpoint(lambda: gym.make("CartPole-v1")).address for _ in range(2)]
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, episodes=6, seed=0)
    local = rlmesh.run(rlmesh.RANDOM_SAMPLE, gym.make("CartPole-v1"), seeds=range(6))
    assert result.rewards == local.rewards and result.complete
    model = rlmesh.numpy.Model(lambda obs: int(obs[2] > 0))
    served = model.serve("memory://unit-model", block=False)
    try:
        with rlmesh.RemoteModel("memory://unit-model") as remote:
            assert rlmesh.run(remote, addresses[0], seeds=[1]).rewards == \
                rlmesh.run(model, gym.make("CartPole-v1"), seeds=[1]).rewards
    finally:
        served.shutdown()
