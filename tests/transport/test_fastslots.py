"""The compiled slot steps (``rlmesh.transport.fastslots``) over real links.

End to end, against real ``rlmesh serve`` children (whose own steps run compiled), the client
spies on its compiled step (``tests.support.fastslots``) to see which way every step went:
read in C, or handed to the Python path with a code (declined, wake the server, receive a
frame, sleep for a late reply). The values must be exactly those of the same env stepped in
this process, whichever way a step went. Then both ends of one link in this process, where
the peer's half of each exchange is done before the call under test: every code, each side.
"""

from __future__ import annotations

import gc
import importlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh.errors import ProtocolError
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.testing import ServerProcess
from rlmesh.transport import fastslots, shm, shmlink
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import step_frames
from rlmesh.wire.slots import SlotSteps
from tests.support.fastslots import (
    client_handshake,
    count_python_slot_reads,
    counting_client_steps,
    require_compiled,
)
from tests.support.fastslots import step_both as step_alike
from tests.support.slow_env import SLOW_MODULE, slow_env_environment
from tests.support.values import assert_same_values

pytestmark = [
    pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine"),
    pytest.mark.timeout(120),
]

READ = -1
"""A step whose reply the compiled step read."""



@pytest.fixture
def codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The outcome of every compiled step of this test (``READ`` or the code handed on)."""
    require_compiled()
    outcomes: list[int] = []
    monkeypatch.setattr(client_handshake, "client_steps", counting_client_steps([0], outcomes))
    yield outcomes


def step_both(env: RemoteEnv, local: gym.Env[Any, Any], actions: list[Any], seed: int,
              pause: float = 0.0) -> None:
    """Step ``env`` (over slot steps) and ``local`` alike (``tests.support.fastslots``)."""
    step_alike(env, local, actions, seed, {"shm_link_steps": True}, pause)


def test_every_action_form_steps_compiled_with_exact_values(
        spawn: Callable[..., ServerProcess], codes: list[int]) -> None:
    server = spawn("CartPole-v1")
    forms: list[Callable[[int], Any]] = [int, np.int64, np.array]
    with RemoteEnv(server.address, timeout=10) as env:
        for form in forms:
            before = len(codes)
            step_both(env, gym.make("CartPole-v1"), [form(i % 2) for i in range(300)], seed=7)
            mine = codes[before:]
            assert len(mine) == 300
            assert fastslots.DECLINED not in mine, form  # every form is of the layout


def test_an_action_of_another_dtype_is_declined_and_stepped_with_frames(
        spawn: Callable[..., ServerProcess], codes: list[int]) -> None:
    server = spawn("CartPole-v1")
    with RemoteEnv(server.address, timeout=10) as env:
        actions = [np.array(i % 2, dtype=np.int32) for i in range(40)]
        step_both(env, gym.make("CartPole-v1"), actions, seed=1)
    assert codes.count(fastslots.DECLINED) == 40


@pytest.mark.parametrize("server_side", ["compiled", "python"])
def test_numpy_scalar_rewards_step_compiled_with_exact_values(
        spawn: Callable[..., ServerProcess], codes: list[int], server_side: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pendulum's reward is a NumPy float64: its replies stay slot steps."""
    read_in_python = count_python_slot_reads(monkeypatch)
    child = dict(os.environ)
    if server_side == "python":
        child["RLMESH_PURE_PYTHON"] = "1"
    server = spawn("Pendulum-v1", env=child)
    rng = np.random.default_rng(5)
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_step_rewards"] is True
        actions = [rng.uniform(-2, 2, (1,)).astype(np.float32) for _ in range(150)]
        step_both(env, gym.make("Pendulum-v1"), actions, seed=6)
    # Every reply was a slot step, read in C, or in Python after a sleep (the client's spin
    # budget shrinks while the env's step outlasts it); none was a frame (RECEIVE).
    assert len(codes) == 150 and set(codes) <= {READ, fastslots.ASLEEP}
    assert codes.count(READ) + read_in_python[0] == 150


def test_a_late_reply_is_slept_for(spawn: Callable[..., ServerProcess], codes: list[int],
                                   tmp_path: Path) -> None:
    # Each step sleeps 20 ms on the server: far past any poll budget.
    server = spawn(f"{SLOW_MODULE}:SlowCartPole", kwargs={"delay": 0.02},
                   env=slow_env_environment(tmp_path))
    with RemoteEnv(server.address, timeout=10) as env:
        step_both(env, gym.make("CartPole-v1"), [i % 2 for i in range(15)], seed=2)
    assert fastslots.ASLEEP in codes


def test_a_reply_a_little_later_than_the_budget_is_caught_by_polling(
        spawn: Callable[..., ServerProcess], codes: list[int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A step of 200+ µs of CPU outlasts the default budget (128 µs) but is within its reach.

    The first steps miss and sleep; from then on the client polls a quarter past its last
    wait, so most replies are read without a wake-up (the budget used to decay to nothing
    and every step slept). Interruptions late in those longer polls do not stop them (on a
    busy virtual machine a poll of 300 µs sees one about every tenth step).
    """
    monkeypatch.delenv("RLMESH_SPIN", raising=False)  # (the default budget: 64 rounds)
    server = spawn(f"{SLOW_MODULE}:busy_cartpole", kwargs={"cost_us": 200.0},
                   env=slow_env_environment(tmp_path))
    slept: list[int] = []
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=3)
        for _ in range(3):  # (another load on the machine makes polling back off: retried)
            for i in range(200):
                _, _, terminated, truncated, _ = env.step(i % 2)
                if terminated or truncated:
                    env.reset()
            slept.append(codes[-200:].count(fastslots.ASLEEP))
            if codes[-200:].count(READ) >= 120:
                return
    pytest.fail(f"most steps slept: {slept} of 200 in each run")


def test_a_sleeping_server_is_woken(spawn: Callable[..., ServerProcess],
                                    codes: list[int]) -> None:
    server = spawn("CartPole-v1")
    with RemoteEnv(server.address, timeout=10) as env:
        # A client that thinks for 30 ms between steps finds the server asleep.
        step_both(env, gym.make("CartPole-v1"), [i % 2 for i in range(15)], seed=3,
                  pause=0.03)
        assert env._channel._fast.wakes >= 10  # type: ignore[union-attr]
    assert fastslots.DECLINED not in codes


def test_frames_in_reply_are_received_on_the_python_path(
        spawn: Callable[..., ServerProcess], codes: list[int],
        odd_envs: dict[str, str]) -> None:
    from tests.transport.test_slot_steps import InfoSometimes
    server = spawn("rlmesh_test_odd_envs:InfoEveryThird", env=odd_envs)
    with RemoteEnv(server.address, timeout=10) as env:
        step_both(env, InfoSometimes(), [i % 2 for i in range(30)], seed=4)
    # Every third reply carries an info: the compiled step never reads one. It hands it on
    # as a frame it met (RECEIVE), or before it came (a server asleep or late: which, depends
    # on the machine; test_what_the_compiled_step_hands_on meets each case for certain).
    assert len(codes) == 30 and READ not in codes[2::3]
    failing = spawn("rlmesh_test_odd_envs:RaisesOnTenth", env=odd_envs)
    with RemoteEnv(failing.address, timeout=10) as env:
        env.reset(seed=0)
        for _ in range(9):
            env.step(0)
        with pytest.raises(rlmesh.RemoteEnvError, match="the tenth step fails"):
            env.step(0)
    assert codes[-1] != READ


def test_vector_steps_compiled_with_exact_values(spawn: Callable[..., ServerProcess],
                                      codes: list[int]) -> None:
    server = spawn("CartPole-v1", extra_args=["--num-envs", "4"])
    local = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    rng = np.random.default_rng(0)
    with RemoteVectorEnv(server.address, timeout=10) as env:
        assert_same_values(env.reset(seed=3), local.reset(seed=3), "reset")
        for i in range(200):
            actions = rng.integers(0, 2, 4)
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
    local.close()
    assert len(codes) == 200
    assert fastslots.DECLINED not in codes


def test_closing_releases_the_views_of_the_slots(spawn: Callable[..., ServerProcess],
                                                 codes: list[int]) -> None:
    server = spawn("CartPole-v1")
    env = RemoteEnv(server.address, timeout=10)
    env.reset(seed=0)
    env.step(0)
    fast = env._channel._fast  # (the spy around the compiled step)
    assert fast is not None and fast.fast.held  # type: ignore[attr-defined]
    env.close()  # (the region closes only once no view of it is left: no BufferError)
    assert not fast.fast.held  # type: ignore[attr-defined]
    assert fast.step(1, 0) == fastslots.DECLINED


def region_maps() -> int:
    """The shared-memory regions this process maps."""
    with open(f"/proc/{os.getpid()}/maps") as maps:
        return sum("rlmesh-region" in line for line in maps)


def test_an_env_dropped_unclosed_unmaps_its_region(spawn: Callable[..., ServerProcess]
                                                   ) -> None:
    require_compiled()
    server = spawn("CartPole-v1")
    before = region_maps()
    env = RemoteEnv(server.address, timeout=10)
    env.reset(seed=0)
    env.step(0)
    assert env._channel._fast is not None and region_maps() == before + 1
    # The link refers to its compiled step (the release it calls when closed) and the step
    # to the link: the cycle collector must be able to free both, and the region with them.
    del env
    gc.collect()
    assert region_maps() == before


@pytest.mark.parametrize("face", ["fastslots", "fastframes"])
def test_pure_python_is_chosen_by_the_environment(face: str) -> None:
    code = f"from rlmesh.transport import {face} as f; print(f.ACCELERATED, f.why_not())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "RLMESH_PURE_PYTHON": "1"}, timeout=60, check=True)
    assert out.stdout.strip() == "False RLMESH_PURE_PYTHON is set"


# -- one link's two ends in this process: the reply is in its slot before the step polls ----


@pytest.fixture
def link_pair() -> Iterator[tuple[shmlink.ShmLink, shmlink.ShmLink]]:
    """A client and a server link over one region and a socket pair (in this process)."""
    size = 1 << 16
    ours, theirs = socket.socketpair()
    region = shm.ShmRegion.create(size)
    assert region.fd is not None
    server_region = shm.ShmRegion(os.dup(region.fd), size)
    client = shmlink.ShmLink(Connection(ours, 1 << 20), region, "client")
    server = shmlink.ShmLink(Connection(theirs, 1 << 20), server_region, "server")
    client.set_timeout(5)
    server.set_timeout(5)
    yield client, server
    client.close()
    server.close()


class Ends(NamedTuple):
    """Both slot layouts of one link, and both compiled steps over them."""

    mine: SlotSteps
    theirs: SlotSteps
    client: fastslots.ClientSteps
    server: fastslots.ServerSteps


def both_ends(link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink], observation: gym.Space[Any],
              action: gym.Space[Any], num_envs: int | None = None, rewards: bool = False
              ) -> Ends:
    """The layouts and the compiled steps of both ends (released when the links close).

    ``rewards``: whether both agreed on NumPy scalar rewards in slot replies.
    """
    frames = step_frames(observation, action, num_envs)
    assert frames is not None
    made: list[Any] = []
    for link, make in zip(link_pair, (fastslots.client_steps, fastslots.server_steps),
                          strict=True):
        slots = SlotSteps(frames, *link.slot_views(), kind=shmlink.KIND_STEP, rewards=rewards)
        steps = make(link, slots)
        assert steps is not None
        link.enable_steps(steps.release, slots.release)
        made.append((slots, steps))
    (mine, client), (theirs, server) = made
    return Ends(mine, theirs, client, server)


def answered_first(server: shmlink.ShmLink, theirs: SlotSteps, rid: int,
                   results: tuple[Any, ...]) -> None:
    """The server's reply to ``rid``, written and announced before the client asks."""
    assert theirs.write_result(rid, *results, {})
    server.send_written()


def test_a_reply_already_in_its_slot_is_read_in_c(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    box = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    _, theirs, fast, _ = both_ends(link_pair, box, gym.spaces.Discrete(2))
    for rid, action in enumerate([1, np.int64(0), np.array(1)]):
        obs = np.arange(4, dtype=np.float32) * (rid + 1)
        answered_first(server, theirs, rid, (obs, 0.5 * rid, rid == 1, rid == 2))
        got = fast.step(rid, action)
        assert type(got) is list
        assert_same_values(got, [0, rid, obs, 0.5 * rid, rid == 1, rid == 2, {}], "reply")
        assert server.recv()[0] is shmlink.STEP_FRAME
        assert_same_values(theirs.read_step(), (rid, action if rid != 1 else action[()]),
                           "request")
    assert client._in_seq == client._out_seq == 3  # (the link's own counts went on)


def test_a_vector_reply_already_in_its_slot_is_read_in_c(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    server = link_pair[1]
    box = gym.spaces.Box(0, 255, (3, 3, 2), np.uint8)  # (a vector env's batched spaces)
    _, theirs, fast, _ = both_ends(link_pair, box, gym.spaces.MultiDiscrete([[3, 3]] * 3),
                                   num_envs=3)
    obs = np.arange(18, dtype=np.uint8).reshape(3, 3, 2)
    results = (obs, np.array([1.0, -2.0, 0.5]), np.array([True, False, False]),
               np.array([False, False, True]))
    answered_first(server, theirs, 7, results)
    actions = np.array([[0, 1], [2, 2], [1, 0]], dtype=np.int64)
    got = fast.step(7, actions)
    assert type(got) is list
    assert_same_values(got, [0, 7, *results, {}], "reply")
    assert got[2].base is None  # (copies: nothing of the slot is handed out)
    server.recv()
    rid, sent = theirs.read_step()
    assert rid == 7 and np.array_equal(sent, actions)


def test_what_the_compiled_step_hands_on(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    mine, theirs, fast, _ = both_ends(link_pair, box, gym.spaces.Discrete(3))
    # Another dtype, shape or type: declined, nothing written or announced.
    for action in (np.array(1, np.int32), np.array([1]), 1.0, "1", 1 << 70):
        assert fast.step(0, action) == fastslots.DECLINED
    assert client._out_seq == 0
    # A reply of another request (or a frame): announced, and handed on to be received.
    answered_first(server, theirs, 5, (np.zeros(2, np.float32), 1.0, False, False))
    assert fast.step(0, 1) == fastslots.RECEIVE
    assert client._out_seq == 1 and client._in_seq == 0
    assert client.recv()[0] is shmlink.STEP_FRAME
    server.recv()
    # No reply within the poll: announced, handed on to sleep for it.
    assert fast.step(1, 2) == fastslots.ASLEEP
    assert fast.spun_from > 0
    server.recv()
    answered_first(server, theirs, 1, (np.ones(2, np.float32), 2.0, True, False))
    header, _ = client.recv_after_spin(fast.spun_from)
    assert header is shmlink.STEP_FRAME
    assert_same_values(mine.read_reply(1)[2:6], [np.ones(2, np.float32), 2.0, True, False],
                       "late reply")
    # A sleeping server gets its wake-up byte from the compiled step itself.
    server._ctl[32] = 1  # (the server's sleep flag)
    answered_first(server, theirs, 2, (np.zeros(2, np.float32), 0.0, False, False))
    got = fast.step(2, 0)
    assert type(got) is list and fast.wakes == 1
    assert server.conn.sock.recv(8) == shmlink.WAKE


def test_a_step_in_two_halves_posted_then_its_reply(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    """``post`` writes and announces; ``reply`` polls and reads (a fleet's submit, collect)."""
    require_compiled()
    client, server = link_pair
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    mine, theirs, fast, _ = both_ends(link_pair, box, gym.spaces.Discrete(3))
    for action in (np.array(1, np.int32), 1.0, 1 << 70):  # (of no layout: nothing sent)
        assert fast.post(0, action) == fastslots.DECLINED
    assert client._out_seq == 0
    assert fast.post(3, 2) == fastslots.DONE
    assert client._out_seq == 1 and client._in_seq == 0
    assert server.recv()[0] is shmlink.STEP_FRAME
    assert theirs.read_step() == (3, 2)
    answered_first(server, theirs, 3, (np.ones(2, np.float32), 1.5, False, True))
    got = fast.reply(3)
    assert type(got) is list
    assert_same_values(got, [0, 3, np.ones(2, np.float32), 1.5, False, True, {}], "reply")
    assert client._in_seq == 1
    # No reply within the poll: handed on to sleep; a reply of another request: to receive.
    assert fast.post(4, 0) == fastslots.DONE
    server.recv()
    assert fast.reply(4) == fastslots.ASLEEP and fast.spun_from > 0
    answered_first(server, theirs, 9, (np.zeros(2, np.float32), 0.0, False, False))
    assert fast.reply(4) == fastslots.RECEIVE
    assert client.recv()[0] is shmlink.STEP_FRAME
    with pytest.raises(ProtocolError, match="answered request 9"):
        mine.read_reply(4)
    # A sleeping server: the post sends its wake-up byte itself.
    server._ctl[32] = 1  # (the server's sleep flag)
    assert fast.post(5, 1) == fastslots.DONE and fast.wakes == 1
    assert server.conn.sock.recv(8) == shmlink.WAKE


def test_the_compiled_steps_are_built_once(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    made = both_ends(link_pair, gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
                     gym.spaces.Discrete(3))
    # A second __init__ would free what a step polling without the GIL still uses.
    for steps in (made.client, made.server):
        with pytest.raises(TypeError, match="already initialised"):
            steps.__init__(*link_pair)  # type: ignore[misc]
        assert steps.held


def asked_first(client: shmlink.ShmLink, mine: SlotSteps, rid: int, action: Any) -> None:
    """The client's request ``rid``, written and announced before the server takes it."""
    assert mine.write_request(rid, action)
    client.send_written()


def test_a_request_already_in_its_slot_is_taken_in_c(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    mine, theirs, _, steps = both_ends(
        link_pair, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(3))
    for rid, action in enumerate([2, np.int64(1), np.array(0)]):
        asked_first(client, mine, rid, action)
        got = steps.take()
        assert type(got) is tuple
        # As the Python path reads it: an int, a NumPy scalar, a fresh 0-d array.
        assert_same_values(got, theirs.read_step(), f"request {rid}")
        if isinstance(action, np.ndarray):
            assert got[1].base is None
    assert server._in_seq == 3


def test_a_vector_reply_is_put_in_c(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client = link_pair[0]
    box = gym.spaces.Box(0, 255, (3, 2, 2), np.uint8)
    mine, _, _, steps = both_ends(link_pair, box, gym.spaces.MultiDiscrete([4, 4, 4]),
                                  num_envs=3)
    asked_first(client, mine, 9, np.array([3, 0, 1]))
    rid, action = steps.take()  # type: ignore[misc]
    assert rid == 9 and np.array_equal(action, [3, 0, 1])
    results = (np.arange(12, dtype=np.uint8).reshape(3, 2, 2), np.array([0.0, 1.5, -1.0]),
               np.array([False, True, False]), np.array([True, False, False]))
    assert steps.put(9, *results, {}) == fastslots.DONE
    assert client.recv()[0] is shmlink.STEP_FRAME
    assert_same_values(mine.read_reply(9), [0, 9, *results, {}], "reply")


def test_what_the_compiled_server_steps_hand_on(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    mine, theirs, _, steps = both_ends(
        link_pair, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(3))
    # Nothing yet: the poll misses, and the Python path sleeps from where it began.
    assert steps.take() == fastslots.ASLEEP
    assert steps.spun_from > 0
    # A frame in the slot: received on the Python path.
    client.send(b"\x93\x04\x00\xc0", [], 0)  # (any frame: the server's decoder judges)
    assert steps.take() == fastslots.RECEIVE
    assert server.recv() == (b"\x93\x04\x00\xc0", None)
    # A form this layout has not: the Python path refuses it.
    asked_first(client, mine, 1, 1)
    mine_out = client.slot_views()[0]
    mine_out[4:8] = (7).to_bytes(4, "little")
    assert steps.take() == fastslots.RECEIVE
    assert server.recv()[0] is shmlink.STEP_FRAME
    with pytest.raises(rlmesh.ProtocolError, match="unknown form 7"):
        theirs.read_step()
    # Results of another layout: declined, nothing written is announced.
    obs = np.zeros(2, np.float32)
    declined: list[tuple[Any, ...]] = [
        (obs, 1.0, False, False, {"info": 1}),       # an info
        (obs, np.float64(1.0), False, False, {}),      # a NumPy reward
        (obs, 1.0, np.bool_(False), False, {}),        # a NumPy flag
        (obs.astype(np.float64), 1.0, False, False, {}),  # another dtype
        (np.zeros(4, np.float32)[::2], 1.0, False, False, {}),  # not contiguous
        (obs.reshape(1, 2), 1.0, False, False, {}),    # another shape
        (list(obs), 1.0, False, False, {}),            # not an array
    ]
    for results in declined:
        assert steps.put(1, *results) == fastslots.DECLINED, results
    assert server._out_seq == 0
    # A sleeping client gets its wake-up byte from the compiled steps themselves.
    client._ctl[48] = 1  # (the client's sleep flag)
    assert steps.put(1, obs + 1, 0.25, True, False, {}) == fastslots.DONE
    assert steps.wakes == 1 and client.conn.sock.recv(8) == shmlink.WAKE
    client._ctl[48] = 0
    assert client.recv()[0] is shmlink.STEP_FRAME
    assert_same_values(mine.read_reply(1), [0, 1, obs + 1, 0.25, True, False, {}],
                       "reply")
    steps.release()
    assert not steps.held
    assert steps.take() == fastslots.RECEIVE and steps.put(2, obs, 0.0, False, False, {}) == 0


@pytest.mark.parametrize("compiled", ["client", "server"])
def test_one_side_compiled_meets_the_other_in_python(
        spawn: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch,
        compiled: str) -> None:
    require_compiled()
    child = dict(os.environ)
    if compiled == "client":
        child["RLMESH_PURE_PYTHON"] = "1"
    else:
        monkeypatch.setattr(client_handshake, "client_steps", lambda link, slots: None)
    server = spawn("CartPole-v1", env=child)
    with RemoteEnv(server.address, timeout=10) as env:
        assert (env._channel._fast is not None) is (compiled == "client")
        step_both(env, gym.make("CartPole-v1"), [i % 2 for i in range(200)], seed=5)


def test_the_codes_are_the_extension_s() -> None:
    require_compiled()
    module = importlib.import_module("rlmesh.transport._fastslots")
    for name in ("DECLINED", "DONE", "WAKE", "RECEIVE", "ASLEEP"):
        assert getattr(module, name) == getattr(fastslots, name), name


def bits(value: Any) -> bytes:
    """A reward's own bytes (a Python float's float64)."""
    return np.asarray(value, np.float64 if type(value) is float else None).tobytes()


def test_numpy_rewards_are_put_and_read_in_c_bit_for_bit(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    box = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    _, theirs, fast, put = both_ends(link_pair, box, gym.spaces.Discrete(2), rewards=True)
    signalling = np.frombuffer(np.uint32(0x7F800001).tobytes(), np.float32)[0]
    rewards = [0.25, np.float64(-1.5), np.float32(2.5), np.float64(np.nan), signalling,
               np.float32(-np.inf), np.float64(5e-324), -0.0]
    reply_slot = server.slot_views()[0]
    for rid, reward in enumerate(rewards):
        obs = np.arange(4, dtype=np.float32) * rid
        assert put.put(rid, obs, reward, rid % 2 == 0, True, {}) == fastslots.DONE
        written = bytes(reply_slot[:64])
        assert theirs.write_result(rid, obs, reward, rid % 2 == 0, True, {})
        assert bytes(reply_slot[:64]) == written  # (the Python layout's bytes, exactly)
        got = fast.step(rid, 1)
        assert type(got) is list and type(got[3]) is type(reward)
        assert bits(got[3]) == bits(reward)  # (a signalling NaN stays one)
        assert_same_values([got[2], *got[4:]], [obs, rid % 2 == 0, True, {}], f"reply {rid}")
        assert server.recv()[0] is shmlink.STEP_FRAME
        theirs.read_step()
    # A float16 has no form: declined, and nothing announced.
    assert put.put(99, np.zeros(4, np.float32), np.float16(1.0), False, False, {}) \
        == fastslots.DECLINED
    assert client._in_seq == len(rewards)


@pytest.mark.parametrize(("agreed", "num_envs", "forms"), [
    (False, None, [1, 2]), (True, None, [3, 2**32 - 1]), (True, 3, [1, 2**32 - 1])])
def test_a_reply_of_a_form_not_agreed_is_handed_on_and_refused(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink], agreed: bool,
        num_envs: int | None, forms: list[int]) -> None:
    require_compiled()
    client, server = link_pair
    box = gym.spaces.Box(0, 255, (num_envs or 1, 2), np.uint8)
    action = gym.spaces.MultiDiscrete([2] * num_envs) if num_envs else gym.spaces.Discrete(2)
    mine, theirs, fast, _ = both_ends(link_pair, box, action, num_envs, rewards=agreed)
    results: tuple[Any, ...] = (np.zeros(box.shape, np.uint8), 0.5, False, False)
    if num_envs:
        results = (results[0], np.zeros(num_envs), np.zeros(num_envs, bool),
                   np.zeros(num_envs, bool))
    sent = np.zeros(num_envs, np.int64) if num_envs else 1
    for rid, form in enumerate(forms):
        answered_first(server, theirs, rid, results)
        client.slot_views()[1][4:8] = form.to_bytes(4, "little")  # (the peer's word)
        assert fast.step(rid, sent) == fastslots.RECEIVE
        assert client.recv()[0] is shmlink.STEP_FRAME  # (the Python path reads it...)
        with pytest.raises(ProtocolError, match=f"unknown form {form}"):
            mine.read_reply(rid)  # (...and refuses it)
        server.recv()


def test_make_vec_posts_its_workers_steps_compiled(codes: list[int]) -> None:
    """``make_vec(local_envs=)`` submits the workers' steps: posted and read in C."""
    local = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    rng = np.random.default_rng(2)
    with rlmesh.make_vec("CartPole-v1", 4, num_workers=1, local_envs=2, timeout=20) as env:
        assert_same_values(env.reset(seed=9), local.reset(seed=9), "reset")
        for i in range(200):
            actions = rng.integers(0, 2, 4)
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
    local.close()
    posts = codes.count(fastslots.DONE) + codes.count(fastslots.WAKE)
    replies = codes.count(READ) + codes.count(fastslots.ASLEEP) + codes.count(fastslots.RECEIVE)
    assert (posts, replies) == (200, 200), codes  # (every step posted, then its reply awaited)
    assert codes.count(READ) > 0  # (read in C; a reply later than the poll is slept for)
