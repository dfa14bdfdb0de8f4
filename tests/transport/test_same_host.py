"""The same-host fast path (``docs/protocol.md`` section 10): replies through a shared region.

The server creates a sealed memfd region for a same-host client, the client attaches it (no
name in /dev/shm at any time), and from then on permitted reply bodies go through the region.
These tests check that the region is negotiated when it should be (and not when turned
off), that nothing is left in /dev/shm or mapped after a session ends (however it ends), that
values are correct and owned by the caller (a later reply never overwrites an observation the
user holds), that pipelined replies do not share the region, that a body larger than the
region falls back to the socket, and that receive spinning does not defeat the client timeout.
"""

from __future__ import annotations

import functools
import json
import mmap
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as gs

import rlmesh
import rlmesh.client.channel
from rlmesh import EnvBusyError, RLMeshTimeoutError, ServeOptions
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.envs import ImageEnv, SpaceEchoEnv
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.transport import shmlink
from rlmesh.wire.encoder import Encoder
from tests.support.processes import stop_child, wait_for

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="needs /dev/shm and /proc (Linux)"),
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

SHM_DIR = "/dev/shm"


# -- helpers -----------------------------------------------------------------------------------


def shm_files(pid: int) -> list[str]:
    """Region files in /dev/shm of rlmesh's (regions are memfds now: there should be none)."""
    return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(f"rlmesh-{pid}-"))


def shm_mappings(owner: int, mapper: int | str = "self") -> list[str]:
    """Lines of ``/proc/MAPPER/maps`` that map an rlmesh region (a memfd; ``owner`` unused)."""
    with open(f"/proc/{mapper}/maps") as handle:
        return [line for line in handle if "/memfd:rlmesh-region" in line]




def via_shm(env: Any) -> bool:
    """Whether the last reply of ``env`` (RemoteEnv or Channel) carried its body in shm.

    (Internal: the client connection's ``peer_flag``; nothing public tells the paths apart.)
    """
    channel = env if isinstance(env, Channel) else env._channel
    return bool(channel._conn.peer_flag)


def root_base(array: np.ndarray[Any, Any]) -> Any:
    base: Any = array
    while isinstance(base, np.ndarray):
        if base.base is None:
            return base
        base = base.base
    return base


def assert_owned(array: np.ndarray[Any, Any]) -> None:
    """Writable, and its memory is a private buffer, not the shared region."""
    assert array.flags.writeable
    base = root_base(array)
    if isinstance(base, memoryview):
        base = base.obj
    assert not isinstance(base, mmap.mmap), "the array lives in the shared-memory region"


def image(shape: tuple[int, ...], value: int) -> np.ndarray[Any, Any]:
    return np.full(shape, value, np.uint8)


@pytest.fixture
def sockdir() -> Iterator[str]:
    """A short private directory for unix sockets (removed after the servers stop)."""
    directory = tempfile.mkdtemp(prefix="rlm-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fresh() -> Callable[[], tuple[list[str], list[str]]]:
    """This process's region files and mappings that appeared since the test began.

    (Leftovers of an earlier failed test are not blamed on this one.)
    """
    me = os.getpid()
    files0, maps0 = set(shm_files(me)), set(shm_mappings(me))

    def new() -> tuple[list[str], list[str]]:
        return ([f for f in shm_files(me) if f not in files0],
                [m for m in shm_mappings(me) if m not in maps0])

    return new



SMALL = (64, 64, 3)
BIG = (224, 224, 3)
small_images = functools.partial(ImageEnv, *SMALL)
big_images = functools.partial(ImageEnv, *BIG)


# == negotiation and cleanup ===================================================================


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_region_negotiated_unlinked_early_and_unmapped_after_close(
        sockdir: str, serve: Any, fresh: Any, transport: str) -> None:
    address = "127.0.0.1:0" if transport == "tcp" else f"unix://{sockdir}/s.sock"
    server = serve(small_images, address)
    env = RemoteEnv(server.address, timeout=10)
    try:
        assert env.contract["shm"] is True
        files, maps = fresh()
        assert files == [], "the region's name outlived the handshake"
        # Both ends map it (client and in-process server), as a deleted file.
        assert len(maps) == 2, maps
        assert all("(deleted)" in line for line in maps)
        obs, _ = env.reset(seed=0)
        assert via_shm(env)
        np.testing.assert_array_equal(obs, image(SMALL, 0))
        for action in (1, 2, 3, 0):
            obs = env.step(np.int64(action))[0]
            assert via_shm(env)
            assert obs.shape == SMALL and obs.dtype == np.uint8
            np.testing.assert_array_equal(obs, image(SMALL, action))
    finally:
        env.close()
    assert fresh()[0] == []
    assert wait_for(lambda: fresh() == ([], [])), fresh()


def test_client_side_same_host_off(spawn: Any, monkeypatch: Any, fresh: Any) -> None:
    server = spawn("rlmesh.envs:ImageEnv", kwargs={"height": 64, "width": 64, "channels": 3})
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    env = RemoteEnv(server.address, timeout=10)
    try:
        assert env.contract["shm"] is False
        assert fresh() == ([], [])
        assert shm_mappings(os.getpid(), server.pid) == []
        obs, _ = env.reset(seed=0)
        for action in (3, 1, 2):
            held = obs
            obs = env.step(np.int64(action))[0]
            assert not via_shm(env)
            np.testing.assert_array_equal(obs, image(SMALL, action))
            assert not np.shares_memory(obs, held)
    finally:
        env.close()
    assert fresh() == ([], [])


def test_server_side_same_host_off(spawn: Any, fresh: Any) -> None:
    server = spawn("rlmesh.envs:ImageEnv", kwargs={"height": 64, "width": 64, "channels": 3},
                   env={**os.environ, "RLMESH_SAME_HOST": "0"})
    env = RemoteEnv(server.address, timeout=10)
    try:
        assert env.contract["shm"] is False
        # The declined offer was unlinked and unmapped by the client.
        assert fresh() == ([], [])
        env.reset(seed=0)
        obs = env.step(np.int64(2))[0]
        assert not via_shm(env)
        np.testing.assert_array_equal(obs, image(SMALL, 2))
    finally:
        env.close()


def test_serve_options_same_host_false(serve: Any, fresh: Any) -> None:
    server = serve(small_images, options=ServeOptions(same_host=False))
    env = RemoteEnv(server.address, timeout=10)
    try:
        assert env.contract["shm"] is False
        assert fresh() == ([], [])
        env.reset(seed=0)
        np.testing.assert_array_equal(env.step(np.int64(1))[0], image(SMALL, 1))
    finally:
        env.close()


def test_connect_options_same_host_false(serve: Any, fresh: Any) -> None:
    server = serve(small_images)
    options = rlmesh.ConnectOptions(timeout=10, same_host=False)
    with RemoteEnv(server.address, options=options) as env:
        assert env.contract["shm"] is False and env.contract["shm_link"] is False
        assert fresh() == ([], [])  # nothing was even offered
        env.reset(seed=0)
        assert not via_shm(env)
        np.testing.assert_array_equal(env.step(np.int64(1))[0], image(SMALL, 1))
    with RemoteEnv(server.address, timeout=10) as env:  # the default offers it
        assert env.contract["shm"] is True


def test_cartpole_without_shm_matches_local(serve: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("RLMESH_SAME_HOST", "0")
    server = serve("CartPole-v1")
    env = RemoteEnv(server.address, timeout=10)
    local = gym.make("CartPole-v1")
    try:
        assert env.contract["shm"] is False
        got, want = env.reset(seed=4), local.reset(seed=4)
        assert got[0].tobytes() == want[0].tobytes()
        for t in range(30):
            got, want = env.step(np.int64(t % 2)), local.step(np.int64(t % 2))
            assert got[0].tobytes() == want[0].tobytes() and got[1:4] == want[1:4]
            if got[2] or got[3]:
                env.reset(seed=t)
                local.reset(seed=t)
    finally:
        env.close()
        local.close()


def test_failed_handshakes_leave_no_region(serve: Any, fresh: Any) -> None:
    # A server that accepts the connection but never answers the HELLO.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)
        host, port = mute.getsockname()
        with pytest.raises(RLMeshTimeoutError):
            Channel(f"{host}:{port}", connect_timeout=0.3)
    assert fresh() == ([], [])
    # A server whose single env instance is taken refuses the second client.
    server = serve(ImageEnv(*SMALL))
    holder = RemoteEnv(server.address, timeout=10)
    try:
        with pytest.raises(EnvBusyError):
            RemoteEnv(server.address, timeout=10)
        files, maps = fresh()
        assert files == []
        assert len(maps) == 2, "only the holder's region (client and server side) is mapped"
    finally:
        holder.close()
    assert wait_for(lambda: fresh() == ([], [])), fresh()


# == values through the region =================================================================


def test_image_frames_correct_and_held_observations_untouched(serve: Any) -> None:
    server = serve(big_images)
    env = RemoteEnv(server.address, timeout=10)
    try:
        assert env.contract["shm"] is True
        env.reset(seed=0)
        held = env.step(np.int64(1))[0]
        assert via_shm(env)
        saved = held.copy()
        assert_owned(held)
        previous = held
        for action in (2, 3, 0, 2, 1, 3):
            obs = env.step(np.int64(action))[0]
            assert via_shm(env)
            np.testing.assert_array_equal(obs, image(BIG, action))
            assert_owned(obs)
            assert not np.shares_memory(obs, previous)
            previous = obs
        np.testing.assert_array_equal(held, saved)
        # Writing to a held observation changes nothing anywhere else.
        held[...] = 77
        obs = env.step(np.int64(2))[0]
        np.testing.assert_array_equal(obs, image(BIG, 2))
        assert (held == 77).all()
    finally:
        env.close()


def nested_space() -> gs.Dict:
    """A fresh Dict space (each env seeds and samples its own)."""
    return gs.Dict({
        "a": gs.Box(0, 255, (33, 31), np.uint8),      # odd size: the next buffer is padded
        "b": gs.Box(-1.0, 1.0, (17, 19), np.float64),
        "c": gs.Tuple((gs.Box(-5, 5, (300,), np.int32), gs.Discrete(3))),
        "small": gs.Box(-1.0, 1.0, (3,), np.float32),  # inline, not in the body
    })


def test_many_out_of_band_arrays_in_one_body(serve: Any) -> None:
    server = serve(lambda: SpaceEchoEnv(nested_space(), gs.Discrete(2)))
    env = RemoteEnv(server.address, timeout=10)
    local = SpaceEchoEnv(nested_space(), gs.Discrete(2))
    try:
        assert env.contract["shm"] is True
        got, want = env.reset(seed=9), local.reset(seed=9)
        assert via_shm(env)
        assert got[0]["a"].tobytes() == want[0]["a"].tobytes()
        held, held_copy = got[0], {k: np.copy(v) for k, v in got[0].items() if k != "c"}
        for _ in range(5):
            got, want = env.step(np.int64(0)), local.step(np.int64(0))
            assert via_shm(env)
            for key in ("a", "b", "small"):
                assert got[0][key].dtype == want[0][key].dtype
                assert got[0][key].tobytes() == want[0][key].tobytes(), key
            assert got[0]["c"][0].tobytes() == want[0]["c"][0].tobytes()
            assert got[0]["c"][1] == want[0]["c"][1]
        for key, value in held_copy.items():
            np.testing.assert_array_equal(held[key], value)
    finally:
        env.close()
        local.close()


def test_pipelined_requests_get_their_own_bodies(serve: Any) -> None:
    server = serve(big_images)
    channel = Channel(server.address, timeout=10)
    try:
        assert channel.contract["shm"] is True
        channel.request(P.OP_RESET, 0, None)
        channel.submit(P.OP_STEP, np.int64(1))
        channel.submit(P.OP_STEP, np.int64(2))
        first = channel.collect()
        second = channel.collect()
        np.testing.assert_array_equal(first[2], image(BIG, 1))
        np.testing.assert_array_equal(second[2], image(BIG, 2))
        assert not np.shares_memory(first[2], second[2])
        # Large, distinct payloads echoed by PING, three in flight at once.
        rng = np.random.default_rng(0)
        payloads = [rng.integers(0, 256, size=200_000 + 4096 * i, dtype=np.uint8)
                    for i in range(3)]
        for payload in payloads:
            channel.submit(P.OP_PING, payload)
        echoes = [channel.collect()[2] for _ in payloads]
        for payload, echo in zip(payloads, echoes, strict=True):
            assert echo.dtype == payload.dtype and echo.tobytes() == payload.tobytes()
        # One at a time again: the region is used, and nothing held changed.
        for action in (3, 0):
            obs = channel.request(P.OP_STEP, np.int64(action))[2]
            assert via_shm(channel)
            np.testing.assert_array_equal(obs, image(BIG, action))
        np.testing.assert_array_equal(first[2], image(BIG, 1))
        np.testing.assert_array_equal(second[2], image(BIG, 2))
        for payload, echo in zip(payloads, echoes, strict=True):
            assert echo.tobytes() == payload.tobytes()
    finally:
        channel.close()


def test_fleet_of_image_endpoints(serve: Any, closing: Any) -> None:
    address = serve(big_images).address
    env = closing(RemoteVectorEnv([address] * 3, timeout=10))
    assert all(channel.contract["shm"] for channel in env._fleet.channels)
    env.reset(seed=0)
    held = None
    for step, actions in enumerate(([1, 2, 3], [0, 3, 1], [2, 2, 0], [3, 1, 2])):
        obs = env.step(np.array(actions, np.int64))[0]
        assert obs.shape == (3, *BIG)
        for i, action in enumerate(actions):
            np.testing.assert_array_equal(obs[i], image(BIG, action))
        if step == 0:
            held, saved = obs, obs.copy()
    assert held is not None
    np.testing.assert_array_equal(held, saved)


def test_make_vec_image_workers(closing: Any) -> None:
    env = closing(rlmesh.make_vec(big_images, 5, num_workers=2))
    env.reset(seed=0)
    first = env.step(np.array([1, 2, 3, 0, 1], np.int64))[0]
    saved = first.copy()
    for actions in ([3, 3, 0, 1, 2], [0, 1, 2, 3, 0]):
        obs = env.step(np.array(actions, np.int64))[0]
        for i, action in enumerate(actions):
            np.testing.assert_array_equal(obs[i], image(BIG, action))
        assert_owned(obs)
    np.testing.assert_array_equal(first, saved)


def test_same_step_final_obs_images_through_the_region(closing: Any) -> None:
    """Object arrays of images (``final_obs``) put their items in the body too."""
    def short_image_episodes() -> gym.Env[Any, Any]:
        return gym.wrappers.TimeLimit(ImageEnv(*BIG), max_episode_steps=3)

    mode = gym.vector.AutoresetMode.SAME_STEP
    remote = closing(rlmesh.make_vec(short_image_episodes, 3, num_workers=1,
                                     vector_kwargs={"autoreset_mode": mode}))
    local = closing(gym.vector.SyncVectorEnv([short_image_episodes] * 3, autoreset_mode=mode))
    remote.reset(seed=0)
    local.reset(seed=0)
    finals = 0
    for t in range(7):
        actions = np.array([t % 4, (t + 1) % 4, (t + 2) % 4], np.int64)
        got, want = remote.step(actions), local.step(actions)
        assert via_shm(remote)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[3], want[3])
        assert set(got[4]) == set(want[4])
        if "final_obs" in want[4]:
            finals += 1
            np.testing.assert_array_equal(got[4]["_final_obs"], want[4]["_final_obs"])
            assert got[4]["final_obs"].dtype == object
            for i in range(3):
                item, expected = got[4]["final_obs"][i], want[4]["final_obs"][i]
                if expected is None:
                    assert item is None
                else:
                    assert item.dtype == expected.dtype and item.shape == expected.shape
                    assert item.tobytes() == expected.tobytes()
                    assert_owned(item)
    assert finals == 2


# == region size ===============================================================================


def body_len(shape: tuple[int, ...]) -> int:
    reply = [P.STATUS_OK, 1, image(shape, 0), 0.0, False, False, {}]
    return Encoder().encode(reply)[2]


REGION_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import rlmesh.transport.shmlink
    from rlmesh.numpy import RemoteEnv

    if sys.argv[3] == "data":  # offer only the body-only mode (as on a non-x86 machine)
        rlmesh.transport.shmlink.supported = lambda: False
    report = {}
    for name, address in (("fits", sys.argv[1]), ("too_big", sys.argv[2])):
        env = RemoteEnv(address, timeout=10)
        report["region"] = env._channel._conn.shm.size  # the server read RLMESH_SHM_BYTES
        obs, _ = env.reset(seed=0)
        paths, correct = [], True
        held = env.step(np.int64(1))[0]
        paths.append(env._channel._conn.peer_flag)
        for action in (2, 3, 0):
            obs = env.step(np.int64(action))[0]
            paths.append(env._channel._conn.peer_flag)
            correct &= bool((obs == action).all())
        correct &= bool((held == 1).all())
        report[name] = {"shm": env.contract["shm"], "link": env.contract["shm_link"],
                        "via_shm": paths, "correct": correct}
        env.close()
    print("REPORT " + json.dumps(report), flush=True)
""")


def reply_frame_len(shape: tuple[int, ...]) -> int:
    """Bytes a link-mode reply slot needs for one step of an ImageEnv of ``shape``."""
    header, _, body = Encoder().encode([P.STATUS_OK, 1, image(shape, 0), 0.0, False, False, {}])
    return shmlink.SLOT_HEADER.size + len(header) + body


@pytest.mark.parametrize("mode", ["link", "data"])
def test_reply_larger_than_region_falls_back_to_socket(serve: Any, mode: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fits_shape, big_shape = BIG, (BIG[0], BIG[1] + 1, BIG[2])
    if mode == "data":  # the body alone uses the region: exactly the fitting body's size
        region = body_len(fits_shape)
        assert body_len(big_shape) > region
    else:  # whole frames use the reply slot, three quarters of what follows the control page
        region = shmlink.CONTROL_BYTES + reply_frame_len(fits_shape) * 4 // 3 + 8
        reply_slot = region - shmlink.CONTROL_BYTES - shmlink.request_slot_bytes(region)
        assert reply_frame_len(fits_shape) <= reply_slot < reply_frame_len(big_shape)
    monkeypatch.setenv("RLMESH_SHM_BYTES", str(region))  # the server sizes each region
    fits = serve(functools.partial(ImageEnv, *fits_shape)).address
    too_big = serve(functools.partial(ImageEnv, *big_shape)).address
    result = subprocess.run(
        [sys.executable, "-c", REGION_SCRIPT, fits, too_big, mode], capture_output=True,
        timeout=30)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    line = next(x for x in result.stdout.decode().splitlines() if x.startswith("REPORT "))
    report = json.loads(line.split(" ", 1)[1])
    assert report["region"] == region
    link = mode == "link"
    # A reply that just fits goes through the region ...
    assert report["fits"] == {"shm": True, "link": link, "via_shm": [True] * 4, "correct": True}
    # ... a slightly larger one (and more) crosses the socket, still correct.
    assert report["too_big"] == {"shm": True, "link": link, "via_shm": [False] * 4,
                                 "correct": True}


# == a client that dies ========================================================================


HOLDER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv(sys.argv[1], timeout=10)
    env.reset(seed=0)
    obs = env.step(np.int64(2))[0]
    assert (obs == 2).all()
    print(f"HOLDING {os.getpid()} {env.contract['shm']}", flush=True)
    time.sleep(60)
""")


def test_sigkilled_client_frees_session_and_region(serve: Any) -> None:
    instance = ImageEnv(*SMALL)
    server = serve(instance)
    child = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, server.address],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 20)
        assert ready, "the client child never connected"
        line = child.stdout.readline().decode()  # type: ignore[union-attr]
        assert line.startswith("HOLDING "), child.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        _, pid_text, shm_text = line.split()
        pid = int(pid_text)
        assert shm_text == "True"
        assert shm_files(pid) == []
        assert len(shm_mappings(pid)) == 1, "the server does not map the child's region"
        with pytest.raises(EnvBusyError):
            RemoteEnv(server.address, timeout=10)
        child.kill()
        child.wait(5)
        # The server notices the dead client, frees the instance and unmaps the region.
        assert wait_for(lambda: shm_mappings(pid) == [], 5.0), shm_mappings(pid)
        assert shm_files(pid) == []
        deadline = time.monotonic() + 5
        while True:
            try:
                env = RemoteEnv(server.address, timeout=10)
                break
            except EnvBusyError:
                assert time.monotonic() < deadline, "the dead client's session was never freed"
                time.sleep(0.05)
        try:
            env.reset(seed=0)
            np.testing.assert_array_equal(env.step(np.int64(3))[0], image(SMALL, 3))
        finally:
            env.close()
    finally:
        stop_child(child)


# == spinning and timeouts =====================================================================


class StallEnv(gym.Env[int, int]):
    """``step`` blocks until released (or 10 s pass)."""

    observation_space = gs.Discrete(2)
    action_space = gs.Discrete(2)

    def __init__(self) -> None:
        self.release = threading.Event()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.release.wait(10)
        return 1, 0.0, False, False, {}


@pytest.fixture
def stalling(serve: Any) -> Iterator[str]:
    env = StallEnv()
    server = serve(env, options=ServeOptions(close_timeout=2))
    yield server.address
    env.release.set()


@pytest.mark.parametrize("spin", [None, 0, 20_000], ids=lambda s: f"spin={s}")
def test_timeout_holds_while_spinning(stalling: str, monkeypatch: Any, spin: int | None) -> None:
    if spin is not None:
        monkeypatch.setenv("RLMESH_SPIN", str(spin))
    expected_spin = rlmesh.ConnectOptions().spin
    env = RemoteEnv(stalling, timeout=0.5)
    try:
        assert env._channel._conn.spin == expected_spin
        assert env.contract["shm"] is True
        env.reset()
        start = time.monotonic()
        with pytest.raises(RLMeshTimeoutError):
            env.step(np.int64(0))
        elapsed = time.monotonic() - start
        assert 0.45 <= elapsed < 1.5, f"timeout=0.5 fired after {elapsed:.3f}s"
        start = time.monotonic()
        with pytest.raises(rlmesh.ConnectionLostError):
            env.step(np.int64(0))  # the channel is unusable after a timeout, at once
        assert time.monotonic() - start < 0.1
    finally:
        env.close()


SPIN_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import rlmesh, rlmesh.client.channel
    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv(sys.argv[1], timeout=0.5)
    env.reset()
    start = time.monotonic()
    try:
        env.step(np.int64(0))
        outcome = "no error"
    except rlmesh.RLMeshTimeoutError:
        outcome = "timeout"
    elapsed = time.monotonic() - start
    print("REPORT " + json.dumps({"spin": rlmesh.ConnectOptions().spin, "outcome": outcome,
                                  "elapsed": elapsed, "shm": env.contract["shm"]}), flush=True)
    env.close()
""")


@pytest.mark.parametrize("spin_env", ["0", "64"])
def test_rlmesh_spin_environment_variable(stalling: str, spin_env: str) -> None:
    result = subprocess.run([sys.executable, "-c", SPIN_SCRIPT, stalling], capture_output=True,
                            timeout=30, env={**os.environ, "RLMESH_SPIN": spin_env})
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    line = next(x for x in result.stdout.decode().splitlines() if x.startswith("REPORT "))
    report = json.loads(line.split(" ", 1)[1])
    assert report["spin"] == int(spin_env)
    assert report["shm"] is True
    assert report["outcome"] == "timeout"
    assert 0.45 <= report["elapsed"] < 1.5, report
