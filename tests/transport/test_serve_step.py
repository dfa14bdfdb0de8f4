"""A server's step in one compiled call (``serve``): take, check, ``env.step``, put.

First both ends of one link and of one socket pair in this process, the request sent before
the call under test: every outcome ``serve`` hands back, and the action check it makes by
itself (integer bounds) against the validator's. Then real servers: what a client sees of
each outcome, and a shutdown that lets a step in ``env.step`` send its reply.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh.client.options import ConnectOptions
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.server.options import ServeOptions
from rlmesh.server.validation import int_bounds, make_validator
from rlmesh.transport import fastframes, fastslots, shmlink
from rlmesh.transport.stream import Connection
from tests.support.fastslots import require_compiled
from tests.support.values import assert_same_values, reply_header
from tests.transport import test_fastframes, test_fastslots
from tests.transport.test_fastframes import ends, framed, sent
from tests.transport.test_fastslots import asked_first, both_ends

pytestmark = pytest.mark.timeout(120)

pair = test_fastframes.pair  # (the fixtures: one socket pair, one link, in this process)
link_pair = test_fastslots.link_pair

BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
OBS = np.array([0.5, -0.25], np.float32)


class Recorded(gym.Env[np.ndarray, Any]):
    """An env whose ``step`` records its actions and returns what ``results`` says."""

    def __init__(self, results: Callable[[Any], Any] | None = None) -> None:
        self.actions: list[Any] = []
        self.results = results or (lambda action: (OBS, 1.5, False, True, {}))

    def step(self, action: Any) -> Any:
        self.actions.append(action)
        return self.results(action)


class Checked:
    """A validator that records what it was asked."""

    def __init__(self, space: gym.Space[Any]) -> None:
        self.check = make_validator(space)
        self.asked: list[Any] = []

    def __call__(self, action: Any) -> bool:
        self.asked.append(action)
        return self.check(action)


def raising(exc: BaseException) -> Callable[[Any], Any]:
    """A ``step`` result maker that raises ``exc``."""
    def results(action: Any) -> Any:
        raise exc
    return results


# -- one link's two ends in this process ------------------------------------------------------


def test_a_step_is_served_in_one_call_over_a_link(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    mine, _, _, steps = both_ends(link_pair, BOX, DISCRETE)
    env, check, bounds = Recorded(), Checked(DISCRETE), int_bounds(DISCRETE)
    for rid, action in enumerate([2, np.int64(0), np.array(1)], start=1):
        asked_first(client, mine, rid, action)
        assert steps.serve(env, check, bounds) == fastslots.DONE
        assert client.recv()[0] is shmlink.STEP_FRAME
        assert_same_values(mine.read_reply(rid), [0, rid, OBS, 1.5, False, True, {}], "reply")
    assert env.actions == [2, np.int64(0), np.array(1)]
    # An int and a NumPy int64 are judged by the bounds alone; a 0-d array by the check.
    assert len(check.asked) == 1 and isinstance(check.asked[0], np.ndarray)
    assert server._in_seq == 3 and server._out_seq == 3
    assert steps.failed is None and not steps.stepping


def test_a_vector_step_is_served_and_refused_by_its_bounds(
        link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    space = gym.spaces.MultiDiscrete([4, 4, 4])
    box = gym.spaces.Box(0, 255, (3, 2), np.uint8)
    mine, _, _, steps = both_ends(link_pair, box, space, num_envs=3)
    results = (np.arange(6, dtype=np.uint8).reshape(3, 2), np.array([0.0, 1.5, -1.0]),
               np.array([False, True, False]), np.array([True, False, False]), {})
    env, check = Recorded(lambda action: results), Checked(space)
    asked_first(client, mine, 4, np.array([3, 0, 1]))
    assert steps.serve(env, check, int_bounds(space)) == fastslots.DONE
    assert client.recv()[0] is shmlink.STEP_FRAME
    assert_same_values(mine.read_reply(4), [0, 4, *results], "reply")
    for rid, action in ((5, [3, 0, 4]), (6, [-1, 0, 0])):
        asked_first(client, mine, rid, np.array(action))
        got = steps.serve(env, check, int_bounds(space))
        assert type(got) is tuple and got[0] == rid and np.array_equal(got[1], action)
    assert len(env.actions) == 1 and check.asked == []  # (the bounds decided every one)
    assert server._out_seq == 1  # (a refusal is the Python path's to answer)


def test_what_serve_hands_on(link_pair: tuple[shmlink.ShmLink, shmlink.ShmLink]) -> None:
    require_compiled()
    client, server = link_pair
    mine, _, _, steps = both_ends(link_pair, BOX, DISCRETE)
    check, bounds = Checked(DISCRETE), int_bounds(DISCRETE)
    # Nothing yet: the poll misses (the Python path sleeps); a frame: received there.
    assert steps.serve(Recorded(), check, bounds) == fastslots.ASLEEP
    client.send(b"\x93\x04\x00\xc0", [], 0)
    assert steps.serve(Recorded(), check, bounds) == fastslots.RECEIVE
    assert server.recv() == (b"\x93\x04\x00\xc0", None)
    # A refused action, by the bounds, or by the check where the bounds do not judge.
    for rid, action in ((1, 3), (2, np.int64(-1)), (3, np.array(7))):
        asked_first(client, mine, rid, action)
        env = Recorded()
        got = steps.serve(env, check, bounds)
        assert type(got) is tuple and len(got) == 2 and got[0] == rid and env.actions == []
    # Results it does not answer: stepped, handed back whole, nothing announced.
    odd: list[Any] = [(OBS, 1.0, False, False, {"info": 1}), [OBS, 1.0, False, False, {}],
                      (OBS, 1.0, False, {}), (OBS.astype(np.float64), 1.0, False, False, {})]
    for rid, result in enumerate(odd, start=4):
        asked_first(client, mine, rid, 1)
        got = steps.serve(Recorded(lambda action, r=result: r), check, bounds)
        assert type(got) is tuple and got[0] == rid and got[1] == 1 and got[2] is result
    assert server._out_seq == 0
    # The env raises: the exception, with the step's id; anything else raised: no id.
    asked_first(client, mine, 8, 1)
    with pytest.raises(ValueError, match="no step"):
        steps.serve(Recorded(raising(ValueError("no step"))), check, bounds)
    assert steps.failed == 8

    class Stop(BaseException):
        pass

    asked_first(client, mine, 9, 1)
    with pytest.raises(Stop):
        steps.serve(Recorded(raising(Stop())), check, bounds)
    assert steps.failed is None
    # While the env steps, serve says so (a draining server lets the reply out).
    seen: list[bool] = []
    asked_first(client, mine, 10, 1)
    assert steps.serve(Recorded(lambda action: (seen.append(steps.stepping),
                                                (OBS, 0.0, False, False, {}))[1]),
                       None, None) == fastslots.DONE
    assert seen == [True] and not steps.stepping
    with pytest.raises(TypeError):
        steps.serve(Recorded(), None)  # type: ignore[call-arg]
    asked_first(client, mine, 11, 1)
    with pytest.raises(TypeError, match="bounds"):
        steps.serve(Recorded(), None, (0, 3))


@pytest.mark.parametrize("space", [gym.spaces.Discrete(5, start=-2),
                                   gym.spaces.MultiDiscrete([3, 3, 3, 3]),
                                   gym.spaces.MultiDiscrete([[2, 2], [2, 2]])])
@pytest.mark.filterwarnings("ignore:.*length of a multi-dimensional MultiDiscrete")
def test_the_bounds_judge_as_the_validator(space: gym.Space[Any]) -> None:
    """Every action of the forms the bounds judge: the same verdict as the validator's."""
    require_compiled()
    bounds = int_bounds(space)
    assert bounds is not None
    validator = make_validator(space)
    rng = np.random.default_rng(3)
    if isinstance(space, gym.spaces.Discrete):
        values = [*range(-5, 6), 2**62, -(2**62), 2**70]
        actions: list[Any] = [*values, *(np.int64(v) for v in values[:-1])]
    else:
        actions = [rng.integers(-2, 5, space.shape) for _ in range(200)]
    refused = 0
    with ServedOnce(space) as served:
        for action in actions:
            verdict = served.judge(action)
            assert verdict == validator(action), action
            refused += not verdict
    assert 0 < refused < len(actions)


class ServedOnce:
    """One socket pair's compiled frames; ``judge`` serves one step of ``action``."""

    def __init__(self, space: gym.Space[Any]) -> None:
        self.space = space
        ours, theirs = socket.socketpair()
        self.pair = (Connection(ours, 1 << 20), Connection(theirs, 1 << 20))
        for conn in self.pair:
            conn.set_timeout(5)
        self.num_envs = None if isinstance(space, gym.spaces.Discrete) else 1
        observation = gym.spaces.Box(-1.0, 1.0, (2,) if self.num_envs is None else (1, 2),
                                     np.float32)
        self.frames, _, self.server = ends(self.pair, observation, space, self.num_envs)
        self.bounds = int_bounds(space)
        self.rid = 0

    def __enter__(self) -> ServedOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self.pair:
            conn.close()

    def judge(self, action: Any) -> bool:
        """Whether ``serve`` stepped ``action`` (no check: the bounds alone judge it)."""
        self.rid += 1
        request = self.frames.encode_request(self.rid, action)
        if request is None:  # (a value no fixed frame carries: out of the int64 range)
            return False
        self.pair[0].sock.sendall(framed(request))
        results: tuple[Any, ...] = (np.zeros(2, np.float32), 0.0, False, False, {}) \
            if self.num_envs is None else (np.zeros((1, 2), np.float32), np.zeros(1),
                                           np.zeros(1, bool), np.zeros(1, bool), {})
        env = Recorded(lambda a: results)
        got = self.server.serve(env, _refuse_all, self.bounds)
        sent(self.pair[0])
        if type(got) is tuple:
            assert len(got) == 2 and env.actions == []
            return False
        assert got == fastframes.DONE and len(env.actions) == 1
        return True


def _refuse_all(action: Any) -> bool:
    raise AssertionError(f"the bounds judge {action!r}: the check is not asked")


def test_a_step_is_served_in_one_call_over_a_socket(pair: tuple[Connection, Connection]
                                                    ) -> None:
    client = pair[0]
    frames, _, fast = ends(pair, BOX, DISCRETE)
    env = Recorded()
    for rid, action in ((5, 2), (200, np.int64(1))):
        request = frames.encode_request(rid, action)
        assert request is not None
        client.sock.sendall(framed(request))
        assert fast.serve(env, make_validator(DISCRETE), int_bounds(DISCRETE)) == \
            fastframes.DONE
        header = reply_header(frames.encode_reply([0, rid, OBS, 1.5, False, True, {}]))
        assert sent(client) == framed(header)
    assert env.actions == [2, 1]
    request = frames.encode_request(6, 9)
    assert request is not None
    client.sock.sendall(framed(request))
    assert fast.serve(env, None, int_bounds(DISCRETE)) == (6, 9)
    assert env.actions == [2, 1] and sent(client) == b""


# -- real servers -------------------------------------------------------------------------------


class Faulty(gym.Env[np.ndarray, np.int64]):
    """CartPole-shaped: raises on action 1 after ``steps`` steps; an info every 7th step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, steps: int = 20, delay: float = 0.0) -> None:
        self.count = 0
        self.steps = steps
        self.delay = delay

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.count = 0
        return np.zeros(4, np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.count += 1
        time.sleep(self.delay)
        if self.count > self.steps and action == 1:
            raise RuntimeError("the env broke")
        info = {"seventh": self.count} if self.count % 7 == 0 else {}
        return np.full(4, self.count, np.float32), float(self.count), False, False, info


@pytest.mark.parametrize("same_host", [True, False], ids=["link", "socket"])
def test_what_a_client_sees_of_every_outcome(serve: Callable[..., rlmesh.EnvServer],
                                             same_host: bool) -> None:
    require_compiled(fastslots if same_host else fastframes)
    server = serve(Faulty, options=ServeOptions(restart_on_error=1))
    with RemoteEnv(server.address, options=ConnectOptions(same_host=same_host, timeout=10)
                   ) as env:
        env.reset(seed=0)
        for i in range(1, 21):  # (served; every 7th reply has an info: the Python path's)
            obs, reward, terminated, truncated, info = env.step(i % 2)
            assert reward == float(i) and obs[0] == i and not (terminated or truncated)
            assert info == ({"seventh": i} if i % 7 == 0 else {})
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(2)  # (refused by the bounds: the session goes on)
        assert env.step(0)[1] == 21.0
        _, reward, _, truncated, info = env.step(1)  # (the env raises: restarted)
        assert truncated and reward == 0.0 and info["rlmesh_restart"]["op"] == "step"
        assert env.step(1)[1] == 1.0  # (the fresh env, served again)
        for _ in range(20):
            env.step(0)
        with pytest.raises(rlmesh.RemoteEnvError, match="the env broke"):
            env.step(1)  # (no restart left: the error, and the session goes on)
        assert env.step(0)[1] == 23.0


@pytest.mark.parametrize("same_host", [True, False], ids=["link", "socket"])
def test_a_shutdown_lets_a_step_in_progress_reply(serve: Callable[..., rlmesh.EnvServer],
                                                  same_host: bool) -> None:
    """``env.step`` runs inside the compiled call: the drain still waits for its reply."""
    require_compiled(fastslots if same_host else fastframes)
    server = serve(lambda: Faulty(delay=0.0), options=ServeOptions(drain_timeout=10))
    options = ConnectOptions(same_host=same_host, timeout=10)
    with RemoteEnv(server.address, options=options) as env:
        env.reset(seed=0)
        assert env.step(0)[1] == 1.0  # (the session now serves its steps compiled)
        results: list[Any] = []
        server_env = _session_env(server)
        server_env.delay = 0.5
        stepping = threading.Thread(target=lambda: results.append(env.step(0)))
        stepping.start()
        time.sleep(0.15)  # (well inside the step's 0.5 s)
        server.shutdown()
        stepping.join(10)
        assert not stepping.is_alive()
        assert len(results) == 1 and results[0][1] == 2.0


def _session_env(server: rlmesh.EnvServer) -> Faulty:
    """The env of the server's one session."""
    sessions = list(server._sessions.values())
    assert len(sessions) == 1
    env = sessions[0][0].resource
    assert isinstance(env, Faulty)
    return env


def test_a_served_vector_env_steps_alike(serve: Callable[..., rlmesh.EnvServer]) -> None:
    """A ``SyncVectorEnv(4)`` of CartPole, served compiled: exactly as in this process."""
    require_compiled()

    def make() -> Any:
        return gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")

    server = serve(make)
    local = make()
    rng = np.random.default_rng(5)
    with RemoteVectorEnv(server.address) as env:
        assert_same_values(list(env.reset(seed=9)), list(local.reset(seed=9)), "reset")
        for i in range(300):
            action = rng.integers(0, 2, 4)
            assert_same_values(list(env.step(action)), list(local.step(action)), f"step {i}")
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(np.array([0, 1, 2, 0]))
        action = rng.integers(0, 2, 4)
        assert_same_values(list(env.step(action)), list(local.step(action)), "after")
