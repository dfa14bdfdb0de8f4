"""Slot steps over real links: agreed in the handshake, exact values, every fallback, refusals.

Real servers (in-process threads over loopback TCP, or ``rlmesh serve`` children) with the
same-host link; the client's :class:`~rlmesh.wire.slots.SlotSteps` is spied on to tell slot
steps from frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
import rlmesh.server.sources
import rlmesh.wire.fixed
from rlmesh import ServeOptions
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.envs import SpaceEchoEnv
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.server import handshake as server_handshake
from rlmesh.server import region
from rlmesh.transport import shmlink
from rlmesh.wire.slots import SlotSteps
from tests.support.fastslots import (
    CountedServerSteps,
    client_handshake,
    count_python_slot_reads,
    counting_client_steps,
    require_compiled,
)
from tests.support.values import assert_same_values

pytestmark = [
    pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine"),
]


@pytest.fixture(params=["compiled", "python"])
def slot_replies(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[list[int]]:
    """Counts the replies this process read from a slot (``[count]``).

    Each test runs with the client's compiled slot step (``rlmesh.transport.fastslots``) and
    with its Python path; the compiled step's replies are counted too.
    """
    count = count_python_slot_reads(monkeypatch)
    if request.param == "python":  # (both sides: the servers of these tests are threads)
        monkeypatch.setattr(client_handshake, "client_steps", lambda link, slots: None)
        monkeypatch.setattr(server_handshake, "server_steps", lambda link, slots: None)
    else:
        require_compiled()
        monkeypatch.setattr(client_handshake, "client_steps", counting_client_steps(count))
    yield count


class InfoSometimes(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose info is not empty on every third step (those replies are frames)."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.steps = 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self.steps += 1
        return obs, reward, terminated, truncated, (
            {"every_third": self.steps} if self.steps % 3 == 0 else {})


def step_alike(address: str, local: gym.Env[Any, Any], seed: int, steps: int = 30) -> None:
    """Step the served env at ``address`` and ``local`` alike: the same values every step."""
    with RemoteEnv(address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        assert_same_values(env.reset(seed=seed), local.reset(seed=seed), "reset")
        for i in range(steps):
            got, want = env.step(i % 2), local.step(i % 2)
            assert_same_values(got, want, f"step {i}")
            if want[2] or want[3]:
                assert_same_values(env.reset(seed=i), local.reset(seed=i), f"reset {i}")


def test_cartpole_steps_through_the_slots_exactly(serve: Callable[..., Any],
                                                  slot_replies: list[int]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    local = gym.make("CartPole-v1")
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        for episode in range(3):
            assert_same_values(env.reset(seed=episode), local.reset(seed=episode), "reset")
            for i in range(200):
                action: Any = (i % 2, np.int64(i % 2), np.array(i % 2))[i % 3]
                got, want = env.step(action), local.step(int(action))
                assert_same_values(got, want, f"step {i}")
                if want[2] or want[3]:
                    break
    assert slot_replies[0] > 100


def test_box_actions_and_infos_that_need_frames(serve: Callable[..., Any],
                                                slot_replies: list[int]) -> None:
    server = serve(InfoSometimes)
    step_alike(server.address, InfoSometimes(), seed=1)
    assert 10 <= slot_replies[0] <= 22  # (a third of the replies had an info)
    server2 = serve(lambda: gym.make("Pendulum-v1"))
    pendulum = gym.make("Pendulum-v1")
    with RemoteEnv(server2.address, timeout=10) as env:
        assert_same_values(env.reset(seed=2), pendulum.reset(seed=2), "reset")
        for i in range(20):
            action = np.array([np.sin(i)], np.float32)
            assert_same_values(env.step(action), pendulum.step(action), f"step {i}")


def test_a_reply_of_another_layout_tries_its_slot_once(serve: Callable[..., Any],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       slot_replies: list[int]) -> None:
    tries = [0]  # (the server runs in this process: its slot writes are counted too)
    write_result = SlotSteps.write_result

    def counted(self: SlotSteps, *args: Any) -> bool:
        tries[0] += 1
        return write_result(self, *args)

    monkeypatch.setattr(SlotSteps, "write_result", counted)
    puts = [0]
    make = server_handshake.server_steps  # (as the fixture chose: compiled, or none)

    def counting(link: Any, slots: SlotSteps) -> Any:
        fast = make(link, slots)
        return None if fast is None else CountedServerSteps(fast, puts)

    monkeypatch.setattr(server_handshake, "server_steps", counting)
    server = serve(InfoSometimes)
    step_alike(server.address, InfoSometimes(), seed=3, steps=30)
    # One try per step, the ten with an info included: by the Python path alone, or by the
    # compiled steps, whose ten refusals the Python path then writes as frames (after a
    # check of its own: it also takes values the compiled steps leave to it).
    assert (puts[0], tries[0]) in ((0, 30), (30, 10))
    assert slot_replies[0] == 20


def test_a_session_reads_its_contract_s_layouts_once(serve: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []  # (the threads that built step layouts: sessions, and this client)
    step_frames = rlmesh.wire.fixed.step_frames

    def counted(*args: Any) -> Any:
        built.append(threading.current_thread().name)
        return step_frames(*args)

    monkeypatch.setattr(rlmesh.wire.fixed, "step_frames", counted)
    server = serve(lambda: gym.make("CartPole-v1"))
    step_alike(server.address, gym.make("CartPole-v1"), seed=4, steps=5)
    step_alike(server.address, gym.make("CartPole-v1"), seed=5, steps=5)
    main = threading.current_thread().name
    assert built.count(main) == 2  # (the client's, once per connection)
    assert len(built) == 4  # and each served session's, once


@pytest.mark.parametrize("agreed", [True, False])
def test_numpy_scalar_rewards_step_through_the_slots_exactly(
        serve: Callable[..., Any], slot_replies: list[int], monkeypatch: pytest.MonkeyPatch,
        agreed: bool) -> None:
    """Pendulum's reward is a NumPy float64: slot steps where agreed, frames where not."""
    if not agreed:  # (a server that does not agree, as before this form: frames, exactly)
        monkeypatch.setattr(region, "step_rewards", lambda hello: False)
    server = serve(lambda: gym.make("Pendulum-v1"))
    local = gym.make("Pendulum-v1")
    rng = np.random.default_rng(4)
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        assert env.contract["shm_link_step_rewards"] is agreed
        assert_same_values(env.reset(seed=1), local.reset(seed=1), "reset")
        for i in range(60):
            action = rng.uniform(-2, 2, (1,)).astype(np.float32)
            got, want = env.step(action), local.step(action)
            assert type(got[1]) is np.float64
            assert_same_values(got, want, f"step {i}")
    assert slot_replies[0] == (60 if agreed else 0)


def test_vector_env_batches(serve: Callable[..., Any], slot_replies: list[int]) -> None:
    server = serve(lambda: gym.make_vec("CartPole-v1", 4, vectorization_mode="sync"))
    local = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    rng = np.random.default_rng(0)
    with RemoteVectorEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        assert_same_values(env.reset(seed=3), local.reset(seed=3), "reset")
        for i in range(120):
            actions = rng.integers(0, 2, 4)
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(np.array([0, 1, 2, 0]))
        assert_same_values(env.step(np.zeros(4, np.int64)), local.step(np.zeros(4, np.int64)),
                           "after the refusal")
    local.close()
    assert slot_replies[0] >= 120


def test_invalid_actions_are_refused_and_the_session_goes_on(
        serve: Callable[..., Any], slot_replies: list[int]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with RemoteEnv(server.address, timeout=10) as env:
        with pytest.raises(rlmesh.ResetNeededError):
            env.step(0)
        env.reset(seed=0)
        for bad in (2, -1, np.int64(5), 2**62):
            with pytest.raises(rlmesh.InvalidActionError):
                env.step(bad)
        assert env.step(1)[0].shape == (4,)
    assert slot_replies[0] == 1


def test_contracts_without_fixed_layouts_keep_frames(serve: Callable[..., Any]) -> None:
    dict_space = spaces.Dict({"a": spaces.Discrete(3)})
    server = serve(lambda: SpaceEchoEnv(dict_space, spaces.Discrete(2)))
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link"] is True
        assert env.contract["shm_link_steps"] is False
        env.reset(seed=0)
        env.step(1)


def test_a_server_that_declines_keeps_frames(serve: Callable[..., Any],
                                             monkeypatch: pytest.MonkeyPatch,
                                             slot_replies: list[int]) -> None:
    monkeypatch.setattr(region, "link_steps", lambda *args: None)
    server = serve(lambda: gym.make("CartPole-v1"))
    local = gym.make("CartPole-v1")
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link"] is True and env.contract["shm_link_steps"] is False
        assert env._channel._slots is None
        assert_same_values(env.reset(seed=0), local.reset(seed=0), "reset")
        for i in range(10):
            assert_same_values(env.step(i % 2), local.step(i % 2), f"step {i}")
    assert slot_replies[0] == 0


def _write_slot(env: RemoteEnv, form: int) -> None:
    """Write a slot step of ``form`` by hand into the request slot and announce it."""
    link = env._channel._conn
    outgoing, _ = link.slot_views()
    outgoing[:24] = (shmlink.KIND_STEP.to_bytes(4, "little") + form.to_bytes(4, "little")
                     + (99).to_bytes(8, "little") + (1).to_bytes(8, "little"))
    link.send_written()


@pytest.mark.parametrize("agreed", [True, False], ids=["unknown-form", "not-agreed"])
def test_a_bad_slot_step_ends_only_its_session(serve: Callable[..., Any],
                                               monkeypatch: pytest.MonkeyPatch,
                                               agreed: bool) -> None:
    if not agreed:
        monkeypatch.setattr(region, "link_steps", lambda *args: None)
    server = serve(lambda: gym.make("CartPole-v1"))
    with RemoteEnv(server.address, timeout=10) as other, \
            RemoteEnv(server.address, timeout=10) as rogue:
        assert rogue.contract["shm_link_steps"] is agreed
        other.reset(seed=0)
        rogue.reset(seed=0)
        _write_slot(rogue, 7 if agreed else 2)
        with pytest.raises(rlmesh.RLMeshError, match=r"unknown form|malformed frame"):
            rogue._channel._reply_locked(2, 99, 10, *rogue._channel._conn.recv())
        for i in range(20):
            other.step(i % 2)
    with RemoteEnv(server.address, timeout=10) as again:
        again.reset(seed=0)
        again.step(0)


def test_many_sessions_open_step_and_close(spawn: Callable[..., Any]) -> None:
    # Each end releases its views of the slots before its region closes (a BufferError
    # otherwise, in the client here and in the server's session thread there).
    server = spawn("CartPole-v1")
    for i in range(40):
        env = RemoteEnv(server.address, timeout=10)
        assert env.contract["shm_link_steps"] is True
        env.reset(seed=i)
        env.step(i % 2)
        env.close()
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        assert env.step(0)[0].shape == (4,)


class FailsOnThirdStep(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose third step raises, in the first env a factory of it builds."""

    def __init__(self, built: list[int]) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.steps = 0
        self.first = not built
        built.append(1)

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.first and self.steps == 3:
            raise RuntimeError("the third step breaks")
        return self.env.step(action)


@pytest.mark.parametrize("restarts", [0, 1], ids=["answered", "restarted"])
def test_an_env_that_raises_in_a_slot_step(serve: Callable[..., Any], slot_replies: list[int],
                                           restarts: int) -> None:
    built: list[int] = []
    server = serve(lambda: FailsOnThirdStep(built),
                   options=ServeOptions(restart_on_error=restarts))
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        env.step(0)
        env.step(1)
        if restarts:
            obs, reward, terminated, truncated, info = env.step(0)
            assert (reward, terminated, truncated) == (0.0, False, True)
            assert "the third step breaks" in info["rlmesh_restart"]["error"]
            assert obs.shape == (4,)
        else:
            with pytest.raises(rlmesh.RemoteEnvError, match="the third step breaks"):
                env.step(0)
        env.reset(seed=1)
        for i in range(4):
            assert env.step(i % 2)[0].shape == (4,)
    assert slot_replies[0] == 6  # every step's reply but the error's (or the restart's)
    assert len(built) == 1 + restarts


class FourValues(gym.Env[np.ndarray, int]):
    """An env with old Gym's step: ``(obs, reward, done, info)``, a time limit at step 3."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        self.steps = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: int) -> Any:
        self.steps += 1
        done = self.steps >= 3
        info = {"TimeLimit.truncated": True} if done else {}
        return np.full(2, self.steps / 10, np.float32), float(action), done, info


class FiveInAList(FourValues):
    """Gymnasium's five values, returned as a list (read like a tuple)."""

    def step(self, action: int) -> Any:
        obs, reward, done, info = super().step(action)
        return [obs, reward, False, done, info]


@pytest.mark.parametrize("kind", [FourValues, FiveInAList], ids=["four", "list"])
def test_results_that_are_not_a_five_tuple_answer_a_slot_step(serve: Callable[..., Any],
                                                              kind: type) -> None:
    server = serve(kind)
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(1)
        assert obs.tolist() == pytest.approx([0.1, 0.1])
        assert (reward, terminated, truncated, info) == (1.0, False, False, {})
        assert env.step(0)[1:] == (0.0, False, False, {})
        obs, reward, terminated, truncated, info = env.step(1)
        assert obs.tolist() == pytest.approx([0.3, 0.3])
        assert (reward, terminated, truncated) == (1.0, False, True)
        assert info == {"TimeLimit.truncated": True}


@pytest.fixture
def slot_steppers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """What each session of this process got as its slot stepper (``None`` or a callable)."""
    made: list[Any] = []
    make = rlmesh.server.sources.slot_stepper

    def recorded(session: Any) -> Any:
        made.append(make(session))
        return made[-1]

    monkeypatch.setattr(rlmesh.server.sources, "slot_stepper", recorded)
    yield made


@pytest.mark.parametrize("options", [{}, {"step_deadline": 5.0}, {"resume_window": 5.0},
                                     {"validate_actions": False}],
                         ids=["plain", "deadline", "resumable", "unchecked"])
def test_slot_steps_are_answered_in_one_call_where_nothing_else_must_run(
        serve: Callable[..., Any], slot_steppers: list[Any], options: dict[str, Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"), options=ServeOptions(**options))
    step_alike(server.address, gym.make("CartPole-v1"), seed=3)
    in_one_call = "step_deadline" not in options and "resume_window" not in options
    assert len(slot_steppers) == 1
    assert callable(slot_steppers[0]) is in_one_call


def test_images_step_through_the_slots_exactly(serve: Callable[..., Any],
                                               slot_replies: list[int]) -> None:
    """An observation too large to travel inline: slot steps agreed all the same."""
    from tests.support.images import NoisyImages
    server = serve(lambda: NoisyImages((224, 224, 3), length=25))
    local = NoisyImages((224, 224, 3), length=25)
    with RemoteEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        assert_same_values(env.reset(seed=4), local.reset(seed=4), "reset")
        for i in range(60):
            got, want = env.step(i % 4), local.step(i % 4)
            assert_same_values(got, want, f"step {i}")
            assert got[0].flags.writeable and not np.shares_memory(got[0], env.step(0)[0])
            local.step(0)
            if want[2] or want[3]:
                assert_same_values(env.reset(seed=i), local.reset(seed=i), f"reset {i}")
    assert slot_replies[0] >= 120


def test_vector_env_image_batches(serve: Callable[..., Any], slot_replies: list[int]) -> None:
    from tests.support.images import NoisyImages

    def images() -> gym.vector.SyncVectorEnv:
        return gym.vector.SyncVectorEnv([lambda: NoisyImages((32, 32, 3))] * 3)

    server = serve(images)
    local = images()
    with RemoteVectorEnv(server.address, timeout=10) as env:
        assert env.contract["shm_link_steps"] is True
        assert_same_values(env.reset(seed=5), local.reset(seed=5), "reset")
        for i in range(50):
            actions = np.array([i % 4, (i + 1) % 4, 0])
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
    local.close()
    assert slot_replies[0] >= 50


def test_a_fleet_s_pipelined_steps_go_through_the_slots_exactly(
        serve: Callable[..., Any], slot_replies: list[int]) -> None:
    """A fleet submits each endpoint its step and collects later: slot steps too."""
    servers = [serve(lambda: gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
               for _ in range(2)]
    local = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    rng = np.random.default_rng(1)
    with RemoteVectorEnv([s.address for s in servers], timeout=10) as env:
        assert_same_values(env.reset(seed=5), local.reset(seed=5), "reset")
        for i in range(100):
            actions = rng.integers(0, 2, 4)
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
    local.close()
    assert slot_replies[0] == 200  # (both endpoints' replies, every step)


def test_a_submitted_slot_step_meets_the_requests_around_it(
        serve: Callable[..., Any], slot_replies: list[int]) -> None:
    """Pipelined behind a submitted slot step, a refusal, another dtype, a reset."""
    server = serve(lambda: gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    local = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    channel = Channel(server.address, timeout=10)
    try:
        assert channel.contract["shm_link_steps"] is True
        assert_same_values(channel.request(P.OP_RESET, [0, 1], None)[2], local.reset(seed=0)[0],
                           "reset")
        first, second = np.array([0, 1]), np.array([1, 1], np.int32)  # (int32: frames)
        channel.submit(P.OP_STEP, first)
        channel.submit(P.OP_STEP, second)  # (the link's one slot: reads the first reply)
        for action in (first, second):
            assert_same_values(channel.collect()[2:], list(local.step(action)), "pipelined")
        assert slot_replies[0] == 1
        channel.submit(P.OP_STEP, np.array([0, 2]))
        with pytest.raises(rlmesh.InvalidActionError):
            channel.collect()
        for i in range(20):
            action = np.array([i % 2, 1])
            channel.submit(P.OP_STEP, action)
            assert_same_values(channel.collect()[2:], list(local.step(action)), f"step {i}")
        assert slot_replies[0] == 21
        assert channel.request(P.OP_RESET, [3, 4], None)[2].shape == (2, 4)
    finally:
        channel.close()
        local.close()


@pytest.mark.parametrize("action", [np.array([0, 1]), np.array([0, 1], np.int32)],
                         ids=["slot-step", "frame"])
def test_a_collect_after_an_abandon_raises_env_closed(serve: Callable[..., Any],
                                                      slot_replies: list[int],
                                                      action: Any) -> None:
    """``abandon()`` (another thread's, a finalizer's) before ``collect``: a typed error."""
    server = serve(lambda: gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    channel = Channel(server.address, timeout=10)
    try:
        channel.request(P.OP_RESET, [0, 1], None)
        channel.submit(P.OP_STEP, action)
        channel.abandon()
        with pytest.raises(rlmesh.EnvClosedError):
            channel.collect()
    finally:
        channel.close()
