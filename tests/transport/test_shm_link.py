"""The same-host link: whole frames and their signalling through shared memory.

Every test here runs real servers (threads or child processes) over loopback TCP with the link
negotiated, and checks what crosses it: values, ordering, wake-ups when a side sleeps instead
of spinning, frames too large for their slot, pipelined requests, and a peer that dies while
the other side sleeps.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
import rlmesh.client.channel
from rlmesh import ServeOptions
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.envs import SpaceEchoEnv
from rlmesh.numpy import RemoteEnv
from rlmesh.transport import shmlink

pytestmark = [
    pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine"),
]


def link_of(env: Any) -> Any:
    """The client connection's link (internal; ``None`` when frames use the socket)."""
    transport = env._channel._conn
    return transport if isinstance(transport, shmlink.ShmLink) else None


def test_negotiated_by_default_over_loopback_tcp(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with RemoteEnv(server.address) as env:
        assert env.contract["shm"] is True
        assert env.contract["shm_link"] is True
        assert link_of(env) is not None
        env.reset(seed=0)
        env.step(0)
        assert env._channel._conn.peer_flag  # the reply came through the slot


def test_same_host_off_means_no_link(serve: Callable[..., Any],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    with RemoteEnv(server.address) as env:
        assert env.contract["shm"] is False
        assert env.contract["shm_link"] is False
        assert link_of(env) is None


@pytest.mark.parametrize("client_spin,server_spin", [(64, 64), (0, 0), (0, 64), (64, 0)],
                         ids=["both-spin", "both-sleep", "client-sleeps", "server-sleeps"])
def test_trajectories_match_local_whoever_sleeps(
        serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        client_spin: int, server_spin: int) -> None:
    # With spinning off, every frame needs a wake-up byte: a lost one would hang the step.
    monkeypatch.setenv("RLMESH_SPIN", str(client_spin))
    server = serve(lambda: gym.make("CartPole-v1"), options=ServeOptions(spin=server_spin))
    local = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    with RemoteEnv(server.address, timeout=10) as env:
        assert link_of(env) is not None and link_of(env).spin == client_spin
        for episode in range(5):
            obs, _ = env.reset(seed=episode)
            expected, _ = local.reset(seed=episode)
            np.testing.assert_array_equal(obs, expected)
            for _ in range(300):
                action = int(rng.integers(2))
                got = env.step(action)
                want = local.step(action)
                np.testing.assert_array_equal(got[0], want[0])
                assert got[1:4] == want[1:4]
                if got[2] or got[3]:
                    break


def test_first_request_right_after_the_handshake(spawn: Callable[..., Any]) -> None:
    # The client may announce its first request before the server (another process) has
    # attached its side of the link; the server must still see it (this once hung).
    server = spawn("CartPole-v1")
    for i in range(300):
        with RemoteEnv(server.address, timeout=5) as env:
            assert link_of(env) is not None
            obs, _ = env.reset(seed=i)
            assert obs.shape == (4,)


def small_region(monkeypatch: pytest.MonkeyPatch, request_slot: int) -> int:
    """Set ``RLMESH_SHM_BYTES`` so the request slot holds ``request_slot`` bytes."""
    size = shmlink.CONTROL_BYTES + request_slot * 4
    assert shmlink.request_slot_bytes(size) == request_slot
    monkeypatch.setenv("RLMESH_SHM_BYTES", str(size))
    return size


def test_frames_too_large_for_their_slot_cross_the_socket(
        serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    small_region(monkeypatch, 8192)  # requests up to 8 KiB, replies up to 24 KiB
    box = spaces.Box(0, 255, (64, 64, 3), np.uint8)  # 12 KiB: too large for a request slot
    server = serve(lambda: SpaceEchoEnv(spaces.Discrete(3), box))
    with RemoteEnv(server.address, timeout=10) as env:
        assert link_of(env) is not None
        env.reset(seed=0)
        for i in range(12):
            action = np.full((64, 64, 3), i, np.uint8)
            if i % 3 == 0:  # a small action in between: back through the slot
                action = action[:8, :8].copy()
                with pytest.raises(rlmesh.InvalidActionError):
                    env.step(action)
                assert env._channel._conn.peer_flag
                continue
            _, _, _, _, info = env.step(action)
            np.testing.assert_array_equal(info["action"], action)
            # The 12 KiB echo fits the 24 KiB reply slot.
            assert env._channel._conn.peer_flag


def test_replies_too_large_for_the_slot_cross_the_socket(
        serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    small_region(monkeypatch, 4096)  # replies up to 12 KiB
    server = serve(lambda: SpaceEchoEnv(spaces.Box(0, 255, (64, 128, 3), np.uint8),
                                        spaces.Discrete(2)))  # 24 KiB observations
    local = SpaceEchoEnv(spaces.Box(0, 255, (64, 128, 3), np.uint8), spaces.Discrete(2))
    with RemoteEnv(server.address, timeout=10) as env:
        obs, _ = env.reset(seed=3)
        expected, _ = local.reset(seed=3)
        np.testing.assert_array_equal(obs, expected)
        assert not env._channel._conn.peer_flag
        held = obs
        for _ in range(10):
            obs = env.step(1)[0]
            np.testing.assert_array_equal(obs, local.step(1)[0])
            assert not env._channel._conn.peer_flag
        np.testing.assert_array_equal(held, expected)  # never overwritten
        assert env.ping(7) == 7  # small frames still use the slot
        assert env._channel._conn.peer_flag


def test_pipelined_requests_and_errors_keep_their_order(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    channel = Channel(server.address, timeout=10)
    try:
        assert isinstance(channel._conn, shmlink.ShmLink)
        channel.request(P.OP_RESET, 0, None)
        local = gym.make("CartPole-v1")
        local.reset(seed=0)
        # Three deep, with an invalid action in the middle: the link holds one frame per
        # direction, so the channel reads replies ahead, and each surfaces at its collect().
        channel.submit(P.OP_STEP, np.int64(1))
        channel.submit(P.OP_STEP, np.int64(7))
        channel.submit(P.OP_STEP, np.int64(0))
        first = channel.collect()
        np.testing.assert_array_equal(first[2], local.step(1)[0])
        with pytest.raises(rlmesh.InvalidActionError):
            channel.collect()
        third = channel.collect()
        np.testing.assert_array_equal(third[2], local.step(0)[0])
        with pytest.raises(RuntimeError):
            channel.collect()
    finally:
        channel.close()


STALL_MODULE = textwrap.dedent("""
    import time
    import gymnasium as gym

    class Stall(gym.Env):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            return 0, {}

        def step(self, action):
            time.sleep(action * 30)
            return 0, 0.0, False, False, {}
""")


def test_server_killed_while_the_client_sleeps(spawn: Callable[..., Any], tmp_path: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stallmod.py").write_text(STALL_MODULE)
    server = spawn("stallmod:Stall",
                   env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}"
                        f"{os.environ.get('PYTHONPATH', '')}"})
    with RemoteEnv(server.address, timeout=30) as env:
        assert link_of(env) is not None
        env.reset()
        env.step(0)
        start = time.monotonic()
        channel = env._channel
        channel.submit(P.OP_STEP, 1)  # the server sleeps 30 s in step
        time.sleep(0.3)  # the client's spin is long over when it starts waiting
        os.kill(server.pid, signal.SIGKILL)
        with pytest.raises(rlmesh.ConnectionLostError):
            channel.collect()
        assert time.monotonic() - start < 5.0


def test_stalled_server_times_out_while_sleeping(serve: Callable[..., Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMESH_SPIN", "0")
    release = []

    class Slow(gym.Env[int, int]):
        observation_space = spaces.Discrete(2)
        action_space = spaces.Discrete(2)

        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
            return 0, {}

        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            deadline = time.monotonic() + 3
            while not release and time.monotonic() < deadline:
                time.sleep(0.01)
            return 0, 0.0, False, False, {}

    server = serve(Slow(), options=ServeOptions(close_timeout=4))
    env = RemoteEnv(server.address, timeout=0.4)
    try:
        env.reset()
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshTimeoutError):
            env.step(1)
        elapsed = time.monotonic() - start
        assert 0.35 <= elapsed < 1.2, elapsed
    finally:
        release.append(True)
        env.close()
