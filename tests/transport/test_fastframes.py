"""The compiled fixed frames (``rlmesh.transport.fastframes``) over real sockets.

End to end, over TCP without shared memory: against real ``rlmesh serve`` children (whose
own steps run compiled, or pure Python), and against a server in this process whose compiled
steps are spied on. The values must be exactly those of the same env stepped in this
process, whichever way a step went. Then both ends of one socket pair in this process, where
the peer's half of each exchange is done before (or after) the call under test: the bytes on
the wire against the Python frames', and every code each side hands on.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh.client.options import ConnectOptions
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.server import handshake as server_handshake
from rlmesh.testing import ServerProcess
from rlmesh.transport import fastframes
from rlmesh.transport.stream import PREFIX, Connection
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames, step_frames
from tests.support.fastslots import require_compiled, served
from tests.support.fastslots import step_both as step_alike
from tests.support.values import assert_same_values, joined, reply_header

pytestmark = pytest.mark.timeout(120)

READ = -1
"""A step whose reply the compiled step read."""
SOCKETS_ONLY = ConnectOptions(same_host=False, timeout=10)
"""TCP without the same-host link or region: the connection the compiled frames cover."""


@pytest.fixture
def codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The outcome of every compiled client step of this test (``READ`` or the code)."""
    require_compiled(fastframes)
    outcomes: list[int] = []
    make = fastframes.client_frames

    class Counted:
        def __init__(self, fast: fastframes.ClientFrames) -> None:
            self.fast = fast

        def step(self, rid: int, action: Any) -> list[Any] | int:
            got = self.fast.step(rid, action)
            outcomes.append(READ if type(got) is list else got)  # type: ignore[arg-type]
            return got

    def made(*args: Any) -> Any:
        fast = make(*args)
        assert fast is not None, "the compiled step declined a connection it covers"
        return Counted(fast)

    monkeypatch.setattr(fastframes, "client_frames", made)
    yield outcomes


def step_both(env: Any, local: gym.Env[Any, Any], actions: list[Any], seed: int) -> None:
    """Step ``env`` (over TCP alone) and ``local`` alike (``tests.support.fastslots``)."""
    step_alike(env, local, actions, seed, {"shm": False, "shm_link": False})


def test_every_action_form_steps_compiled_with_exact_values(
        spawn: Callable[..., ServerProcess], codes: list[int]) -> None:
    server = spawn("CartPole-v1")
    forms: list[Callable[[int], Any]] = [int, np.int64, np.array]
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        for form in forms:
            before = len(codes)
            step_both(env, gym.make("CartPole-v1"), [form(i % 2) for i in range(200)], seed=7)
            assert codes[before:] == [READ] * 200, form


def test_a_box_action_of_another_dtype_is_declined_with_exact_values(
        spawn: Callable[..., ServerProcess], codes: list[int]) -> None:
    server = spawn("MountainCarContinuous-v0")  # (a Box action, and rewards of Python floats)
    rng = np.random.default_rng(1)
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        actions = [rng.uniform(-1, 1, (1,)).astype(np.float32) for _ in range(100)]
        step_both(env, gym.make("MountainCarContinuous-v0"), actions, seed=3)
        assert codes == [READ] * 100
        listed = [a.tolist() for a in actions[:20]]  # (no fixed frame: the general path)
        step_both(env, gym.make("MountainCarContinuous-v0"), listed, seed=4)
    assert codes[100:] == [fastframes.DECLINED] * 20


def test_frames_of_another_kind_are_received_on_the_python_path(
        spawn: Callable[..., ServerProcess], codes: list[int],
        odd_envs: dict[str, str]) -> None:
    from tests.transport.test_slot_steps import InfoSometimes
    server = spawn("rlmesh_test_odd_envs:InfoEveryThird", env=odd_envs)
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        step_both(env, InfoSometimes(), [i % 2 for i in range(30)], seed=4)
    # Every third reply carries an info: another frame, received on the Python path.
    assert codes == [READ, READ, fastframes.RECEIVE] * 10
    failing = spawn("rlmesh_test_odd_envs:RaisesOnTenth", env=odd_envs)
    with RemoteEnv(failing.address, options=SOCKETS_ONLY) as env:
        env.reset(seed=0)
        for _ in range(9):
            env.step(0)
        with pytest.raises(rlmesh.RemoteEnvError, match="the tenth step fails"):
            env.step(0)
        assert env.step(1)[0].shape == (4,)  # (the session goes on)
    assert codes[-2:] == [fastframes.RECEIVE, READ]


def test_vector_steps_compiled_with_exact_values(spawn: Callable[..., ServerProcess],
                                                 codes: list[int]) -> None:
    server = spawn("CartPole-v1", extra_args=["--num-envs", "4"])
    local = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    rng = np.random.default_rng(0)
    with RemoteVectorEnv(server.address, options=SOCKETS_ONLY) as env:
        assert_same_values(env.reset(seed=3), local.reset(seed=3), "reset")
        for i in range(200):
            actions = rng.integers(0, 2, 4)
            assert_same_values(env.step(actions), local.step(actions), f"step {i}")
    local.close()
    assert codes == [READ] * 200


@pytest.mark.parametrize("python_side", ["client", "server"])
def test_one_side_compiled_against_the_other_in_python(
        spawn: Callable[..., ServerProcess], python_side: str) -> None:
    require_compiled(fastframes)
    child = dict(os.environ)
    if python_side == "server":
        child["RLMESH_PURE_PYTHON"] = "1"
    server = spawn("CartPole-v1", env=child)
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        if python_side == "client":
            env._channel._fast_frames = None  # type: ignore[union-attr]
        else:
            assert env._channel._fast_frames is not None  # type: ignore[union-attr]
        step_both(env, gym.make("CartPole-v1"), [i % 2 for i in range(100)], seed=5)


@pytest.mark.parametrize("server_side", ["compiled", "python"])
def test_numpy_scalar_rewards_step_compiled_with_exact_values(
        spawn: Callable[..., ServerProcess], codes: list[int], server_side: str) -> None:
    """Pendulum's reward is a NumPy float64: its replies keep the fixed frames."""
    child = dict(os.environ)
    if server_side == "python":
        child["RLMESH_PURE_PYTHON"] = "1"  # (its replies: the Python frames' same bytes)
    server = spawn("Pendulum-v1", env=child)
    rng = np.random.default_rng(2)
    actions = [rng.uniform(-2, 2, (1,)).astype(np.float32) for _ in range(120)]
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        step_both(env, gym.make("Pendulum-v1"), actions, seed=8)
        assert type(env.step(actions[0])[1]) is np.float64
    assert codes == [READ] * 121


class ServerSpy:
    """The compiled server steps of a server in this process, and what each call gave."""

    def __init__(self) -> None:
        self.takes: list[Any] = []
        self.puts: list[int] = []

    def wrap(self, fast: fastframes.ServerFrames) -> Any:
        spy = self

        class Spied:
            def take(self) -> Any:
                got = fast.take()
                spy.takes.append("step" if type(got) is tuple else got)
                return got

            def put(self, *args: Any) -> int:
                spy.puts.append(fast.put(*args))
                return spy.puts[-1]

            def serve(self, env: Any, check: Any, bounds: Any) -> Any:
                try:
                    got = fast.serve(env, check, bounds)
                except Exception:
                    spy.takes.append("step" if fast.failed is not None else "raised")
                    raise
                take, put = served(got)
                spy.takes.append(take)
                if put is not None:
                    spy.puts.append(put)
                return got

            @property
            def failed(self) -> int | None:
                return fast.failed

            @property
            def stepping(self) -> bool:
                return fast.stepping

        return Spied()


def test_the_server_takes_and_puts_compiled(serve: Callable[..., rlmesh.EnvServer],
                                            monkeypatch: pytest.MonkeyPatch,
                                            odd_envs: dict[str, str]) -> None:
    require_compiled(fastframes)
    spy = ServerSpy()
    make = server_handshake.server_frames
    monkeypatch.setattr(server_handshake, "server_frames",
                        lambda *args: spy.wrap(make(*args)))  # type: ignore[arg-type]
    from tests.transport.test_slot_steps import InfoSometimes
    server = serve(InfoSometimes)
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        step_both(env, InfoSometimes(), [i % 2 for i in range(30)], seed=6)
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(np.int64(7))
    # The reset comes as another frame (RECEIVE); every step is taken compiled, and every
    # third reply (an info) is declined and sent by the Python path.
    assert spy.takes.count("step") == 31 and fastframes.RECEIVE in spy.takes
    assert spy.puts == [fastframes.DONE, fastframes.DONE, fastframes.DECLINED] * 10
    spy.puts.clear()
    pendulum = serve(lambda: gym.make("Pendulum-v1"))  # (NumPy float64 rewards: put too)
    with RemoteEnv(pendulum.address, options=SOCKETS_ONLY) as env:
        step_both(env, gym.make("Pendulum-v1"), [np.full(1, a, np.float32)
                                                 for a in np.linspace(-2, 2, 40)], seed=9)
    assert spy.puts == [fastframes.DONE] * 40


# -- both ends of one socket pair in this process -------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[Connection, Connection]]:
    """A client and a server connection over a socket pair, bounded by 5 s."""
    ours, theirs = socket.socketpair()
    client, server = Connection(ours, 1 << 20), Connection(theirs, 1 << 20)
    client.set_timeout(5)
    server.set_timeout(5)
    yield client, server
    client.close()
    server.close()


def framed(header: bytes) -> bytes:
    return PREFIX.pack(len(header), 0) + header


class Ends(NamedTuple):
    """The fixed layouts of one contract, and both compiled steps over a socket pair."""

    frames: StepFrames
    client: fastframes.ClientFrames
    server: fastframes.ServerFrames


def ends(pair: tuple[Connection, Connection], observation: gym.Space[Any] | None = None,
         action: gym.Space[Any] | None = None, num_envs: int | None = None) -> Ends:
    """Both compiled steps over ``pair`` (by default: a Box observation, Discrete(3) actions)."""
    require_compiled(fastframes)
    frames = step_frames(observation or BOX, action or gym.spaces.Discrete(3), num_envs)
    assert frames is not None
    client = fastframes.client_frames(pair[0], frames, 1 << 20)
    server = fastframes.server_frames(pair[1], frames)
    assert client is not None and server is not None
    return Ends(frames, client, server)


def sent(conn: Connection) -> bytes:
    """What the peer sent, without blocking."""
    try:
        return conn.sock.recv(1 << 16, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


BOX = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33,
        -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
"""Every width of a msgpack int, at both ends."""


def test_the_client_sends_the_python_frames_bytes_and_reads_the_reply(
        pair: tuple[Connection, Connection]) -> None:
    server = pair[1]
    frames, fast, _ = ends(pair)
    actions: list[Any] = [*INTS, np.int64(2), np.array(1)]
    for i, action in enumerate(actions):
        rid = [5, 200, 60000, 2**31][i % 4]
        obs = np.arange(3, dtype=np.float32) * i
        reply = [0, rid, obs, 0.25 * i, i % 2 == 0, i % 3 == 0, {}]
        header = reply_header(frames.encode_reply(reply))
        server.sock.sendall(framed(header))
        got = fast.step(rid, action)
        assert type(got) is list
        assert_same_values(got, reply, f"reply {i}")
        request = frames.encode_request(rid, action)
        assert request is not None and sent(server) == framed(request), action


def test_the_client_hands_on_what_it_does_not_read(pair: tuple[Connection, Connection]
                                                  ) -> None:
    client, server = pair
    frames, fast, _ = ends(pair)
    # Another dtype, shape or type, a larger int, a rid of another width: nothing sent.
    for rid, action in [(1, np.array(1, np.int32)), (1, np.array([1])), (1, 1.0), (1, True),
                        (1, 2**64), (2**32, 1), (-1, 1), (1.0, 1)]:
        assert fast.step(rid, action) == fastframes.DECLINED
    assert sent(server) == b""
    # A reply of another kind (an error, another request's): left for Connection.recv.
    error = Encoder().encode([1, 4, {"code": "env_error", "message": "no"}])[0]
    other = reply_header(
        frames.encode_reply([0, 9, np.zeros(3, np.float32), 1.0, False, False, {}]))
    # Rewards of no fixed form: an int, a float16, a float64 in big-endian order.
    obs = np.zeros(3, np.float32)
    rewards = [Encoder().encode([0, 4, obs, reward, False, False, {}])[0]
               for reward in (1, np.float16(1.0), np.float64(1.0))]
    rewards[2] = rewards[2].replace(b"<f8", b">f8")
    assert rewards[2].count(b">f8") == 1
    for header in (error, other, *rewards):
        server.sock.sendall(framed(header))
        assert fast.step(4, 1) == fastframes.RECEIVE
        assert bytes(client.recv()[0]) == header
    # The peer gone: handed on, and the Python path says so.
    server.sock.shutdown(socket.SHUT_WR)
    assert fast.step(5, 1) == fastframes.RECEIVE
    with pytest.raises(rlmesh.ConnectionLostError):
        client.recv()


def test_a_reply_in_pieces_and_at_the_buffer_s_end_is_read(
        pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    frames, fast, _ = ends(pair)
    reply = [0, 3, np.ones(3, np.float32), -1.5, False, True, {}]
    header = reply_header(frames.encode_reply(reply))
    data = framed(header)
    for spin in (0, 50):
        client.set_spin(spin)
        # Half of the reply waits in the staging buffer's last bytes; the rest comes late.
        end = len(client._buf)
        client._buf[end - 5 : end] = data[:5]
        client._start, client._end = end - 5, end
        later = threading.Timer(0.05, server.sock.sendall, [data[5:]])
        later.start()
        got = fast.step(3, 2)
        later.join()
        assert type(got) is list
        assert_same_values(got, reply, f"spin {spin}")
        assert client._start == client._end
        sent(server)


def test_a_silent_server_times_the_step_out(pair: tuple[Connection, Connection]) -> None:
    client, _ = pair
    fast = ends(pair).client
    client.set_timeout(0.2)
    started = time.monotonic()
    with pytest.raises(BlockingIOError):  # (as the socket module raises for SO_RCVTIMEO)
        fast.step(1, 1)
    assert time.monotonic() - started < 3


def test_the_compiled_steps_are_built_once_and_within_the_client_s_limits(
        pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    _, fast, taking = ends(pair)
    # A second __init__ would free what a step waiting without the GIL still uses.
    with pytest.raises(TypeError, match="already initialised"):
        fast.__init__(client, np.ndarray, None, None, None, False, (), 0)  # type: ignore[misc]
    with pytest.raises(TypeError, match="already initialised"):
        taking.__init__(server, np.ndarray, None, None, False, (), 0)  # type: ignore[misc]
    # A reply larger than this side's own limit: the Python path, which refuses it.
    wide = step_frames(gym.spaces.Box(-1.0, 1.0, (256,), np.float32), gym.spaces.Discrete(2))
    ours, theirs = socket.socketpair()
    small = Connection(ours, 1024)
    try:
        assert fastframes.client_frames(small, wide, 1 << 20) is None
        assert fastframes.client_frames(client, wide, 1 << 20) is not None
        assert fastframes.client_frames(client, wide, 2**70) is not None  # (a huge peer limit)
    finally:
        small.close()
        theirs.close()


class Interrupted(Exception):
    """What this test's SIGALRM handler raises (as SIGINT's raises KeyboardInterrupt)."""


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted


@pytest.mark.timeout(60, method="thread")  # (pytest-timeout's default method uses SIGALRM)
def test_a_signal_interrupts_a_step_blocked_without_a_timeout(
        pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    fast = ends(pair).client
    client.set_timeout(None)  # (only the signal can end this wait)
    before = signal.signal(signal.SIGALRM, _interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        started = time.monotonic()
        with pytest.raises(Interrupted):  # (the handler ran inside the compiled wait)
            fast.step(1, 1)
        assert time.monotonic() - started < 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    assert len(sent(server)) > 0  # (the request had gone out)


def test_a_connection_aborted_from_another_thread_ends_a_blocked_step(
        pair: tuple[Connection, Connection]) -> None:
    client, _ = pair
    fast = ends(pair).client
    client.set_timeout(None)
    aborting = threading.Timer(0.2, client.abort)
    aborting.start()
    assert fast.step(1, 1) == fastframes.RECEIVE  # (the peer is gone: the Python path says so)
    aborting.join()
    with pytest.raises(rlmesh.ConnectionLostError):
        client.recv()


def test_the_server_takes_what_the_python_frames_decode(
        pair: tuple[Connection, Connection]) -> None:
    client = pair[0]
    frames, _, fast = ends(pair)
    for i, action in enumerate([*INTS, np.int64(2), np.array(1)]):
        rid = [5, 200, 60000, 2**31][i % 4]
        request = frames.encode_request(rid, action)
        assert request is not None
        client.sock.sendall(framed(request))
        got = fast.take()
        assert type(got) is tuple
        assert_same_values(list(got), frames.decode_request(request)[1:], f"request {i}")
    # Ints in longer forms than msgpack writes them are read as the Python frames read them.
    for header in (b"\x93\x02\x01\xcd\x00\x05", b"\x93\x02\x01\xd0\x05", b"\x93\x02\x01\xd3"
                   + (-3).to_bytes(8, "big", signed=True)):
        client.sock.sendall(framed(header))
        assert list(fast.take()) == frames.decode_request(header)[1:]  # type: ignore[arg-type]


def test_the_server_hands_on_what_it_does_not_take(pair: tuple[Connection, Connection]
                                                  ) -> None:
    client, server = pair
    fast = ends(pair).server
    encode = Encoder().encode
    others = [encode([3, 1, None, None])[0],  # (a RESET)
              b"\x93\x02\x01\xc0",  # (a STEP of nil: the general decoder judges it)
              b"\x93\x02\x01\x05\x05",  # (an int and a byte more)
              b"\x93\x02\xcf" + bytes(8) + b"\x01",  # (a rid in eight bytes)
              encode([2, 1, np.zeros(3, np.int32)])[0]]  # (an array of another dtype)
    for header in others:
        client.sock.sendall(framed(header))
        assert fast.take() == fastframes.RECEIVE
        assert bytes(server.recv()[0]) == header  # (left in the buffer, whole)
    client.sock.sendall(PREFIX.pack(4, 3) + b"\x93\x02\x01\x01" + b"abc")  # (with a body)
    assert fast.take() == fastframes.RECEIVE
    assert server.recv() == (b"\x93\x02\x01\x01", bytearray(b"abc"))
    client.sock.shutdown(socket.SHUT_WR)
    assert fast.take() == fastframes.RECEIVE
    with pytest.raises(rlmesh.ConnectionLostError):
        server.recv()


@pytest.mark.parametrize("num_envs", [None, 3])
def test_the_server_puts_the_python_frames_bytes(pair: tuple[Connection, Connection],
                                                 num_envs: int | None) -> None:
    client = pair[0]
    box = gym.spaces.Box(0, 255, (3, 2) if num_envs else (2,), np.uint8)
    action = gym.spaces.MultiDiscrete([4] * 3) if num_envs else gym.spaces.Discrete(4)
    frames, _, fast = ends(pair, box, action, num_envs)
    obs = np.arange(box.shape[0] * (box.shape[1] if num_envs else 1), dtype=np.uint8)
    obs = obs.reshape(box.shape)
    results: tuple[Any, ...] = (obs, 0.5, True, False) if num_envs is None else (
        obs, np.array([1.0, 0.0, -2.5]), np.array([True, False, False]),
        np.array([False, False, True]))
    for rid in (5, 200, 60000, 2**31):
        assert fast.put(rid, *results, {}) == fastframes.DONE
        header = reply_header(frames.encode_reply([0, rid, *results, {}]))
        assert sent(client) == framed(header)
    # Results of another layout: declined, and nothing sent.
    odd = obs.astype(np.int16)
    declined: list[tuple[Any, ...]] = [(obs[::-1].copy()[::-1], *results[1:]),
                                       (odd, *results[1:]), (obs.tolist(), *results[1:])]
    if num_envs is None:
        declined += [(obs, np.float16(0.5), True, False), (obs, 1, True, False),
                     (obs, np.array(0.5), True, False), (obs, 0.5, np.bool_(True), False)]
    else:
        declined += [(obs, results[1].astype(np.float32), *results[2:])]
    for values in declined:
        assert fast.put(1, *values, {}) == fastframes.DECLINED
    assert fast.put(1, *results, {"x": 1}) == fastframes.DECLINED
    assert fast.put(2**32, *results, {}) == fastframes.DECLINED
    assert sent(client) == b""


@pytest.mark.parametrize("kind", [float, np.float64, np.float32])
def test_numpy_scalar_rewards_are_put_and_read_as_the_python_frames(
        pair: tuple[Connection, Connection], kind: type) -> None:
    client, server = pair
    frames, fast_client, fast_server = ends(pair)
    for i, rid in enumerate((5, 200, 60000, 2**31)):
        reply = [0, rid, np.arange(3, dtype=np.float32) * i, kind(-0.75 * i - 0.1),
                 i % 2 == 0, i % 3 == 0, {}]
        assert fast_server.put(*reply[1:]) == fastframes.DONE
        header = reply_header(frames.encode_reply(reply))
        assert header == Encoder().encode(reply)[0]
        wire = sent(client)
        assert wire == framed(header)
        server.sock.sendall(wire)  # (back the other way: the client reads it)
        got = fast_client.step(rid, 1)
        assert type(got) is list and type(got[3]) is kind
        assert_same_values(got, frames.decode_reply(header, None), f"reply {i}")
        assert bytes(server.recv()[0]) == frames.encode_request(rid, 1)


# -- observations in the reply's body (images) ----------------------------------------------


@pytest.mark.parametrize("server_side", ["compiled", "python"])
def test_images_step_compiled_with_exact_values(serve: Callable[..., rlmesh.EnvServer],
                                                codes: list[int],
                                                monkeypatch: pytest.MonkeyPatch,
                                                server_side: str) -> None:
    """224x224x3 frames travel as the reply's body: the compiled client reads them."""
    from tests.support.images import NoisyImages
    spy = ServerSpy()
    make = server_handshake.server_frames
    monkeypatch.setattr(server_handshake, "server_frames", lambda *args: (
        spy.wrap(make(*args)) if server_side == "compiled" else None))  # type: ignore[arg-type]
    server = serve(lambda: NoisyImages((224, 224, 3), length=20))
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        step_both(env, NoisyImages((224, 224, 3), length=20), [i % 4 for i in range(50)],
                  seed=11)
    assert codes == [READ] * 50
    assert spy.puts == ([fastframes.DONE] * 50 if server_side == "compiled" else [])


def test_images_step_on_the_python_frames_with_exact_values(
        serve: Callable[..., rlmesh.EnvServer]) -> None:
    """Neither side compiled: the Python fixed frames carry the body alike."""
    from tests.support.images import NoisyImages
    server = serve(lambda: NoisyImages((64, 64, 3)))
    with RemoteEnv(server.address, options=SOCKETS_ONLY) as env:
        env._channel._fast_frames = None  # type: ignore[union-attr]
        step_both(env, NoisyImages((64, 64, 3)), [i % 4 for i in range(60)], seed=12)


IMAGE = gym.spaces.Box(0, 255, (48, 64, 3), np.uint8)


def image_reply(rid: int, seed: int = 0) -> list[Any]:
    image = np.random.default_rng(seed).integers(0, 256, IMAGE.shape, np.uint8)
    return [0, rid, image, -0.5 * seed, seed % 2 == 0, False, {}]


def framed_with_body(frames: StepFrames, reply: list[Any]) -> bytes:
    """A reply's whole frame as the Python frames send it: prefix, header, body."""
    encoded = frames.encode_reply(reply)
    assert encoded is not None
    header, buffers, body_len = encoded
    body = joined(buffers)
    assert body_len == len(body) > 0
    return PREFIX.pack(len(header), body_len) + header + body


def test_the_server_puts_the_body_as_the_python_frames(
        pair: tuple[Connection, Connection]) -> None:
    client, _server = pair
    frames, _, fast = ends(pair, IMAGE, gym.spaces.Discrete(4))
    for i, rid in enumerate((3, 300, 70000)):
        reply = image_reply(rid, i)
        assert fast.put(*reply[1:]) == fastframes.DONE
        want = framed_with_body(frames, reply)
        got = b""
        while len(got) < len(want):
            got += client.sock.recv(1 << 20)
        assert got == want
    # An image of another layout, or not C-contiguous: declined, nothing sent.
    image = image_reply(1)[2]
    for other in (image[:, ::-1], np.asfortranarray(image), image.astype(np.int16),
                  image[:47]):
        assert fast.put(1, other, 1.0, False, False, {}) == fastframes.DECLINED
    assert fast.put(1, image, np.float16(1), False, False, {}) == fastframes.DECLINED
    assert sent(client) == b""


def test_the_client_reads_a_body_that_comes_in_pieces(
        pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    frames, fast, _ = ends(pair, IMAGE, gym.spaces.Discrete(4))
    for i, cut in enumerate((0, 20, 1000, 9000)):
        reply = image_reply(9 + i, i)
        data = framed_with_body(frames, reply)

        def late(data: bytes = data, cut: int = cut) -> None:
            time.sleep(0.05)
            server.sock.sendall(data[cut:])

        server.sock.sendall(data[:cut])
        thread = threading.Thread(target=late)
        thread.start()
        got = fast.step(9 + i, 2)
        thread.join()
        assert type(got) is list
        assert_same_values(got, frames.decode_reply(*split(data)), f"reply {i}")
        assert got[2].flags.writeable and got[2].flags.c_contiguous
        assert bytes(server.recv()[0]) == frames.encode_request(9 + i, 2)
    assert client._start == client._end  # (nothing of the frames left behind)


def split(data: bytes) -> tuple[bytes, bytearray]:
    """A framed message's header and body."""
    hlen, _blen = PREFIX.unpack_from(data)
    return data[PREFIX.size : PREFIX.size + hlen], bytearray(data[PREFIX.size + hlen:])


def test_the_client_hands_on_a_body_of_another_size(
        pair: tuple[Connection, Connection]) -> None:
    client, server = pair
    frames, fast, _ = ends(pair, IMAGE, gym.spaces.Discrete(4))
    reply = image_reply(5)
    header, body = split(framed_with_body(frames, reply))
    for other in (body[:-1], body + b"\x00", b""):
        server.sock.sendall(PREFIX.pack(len(header), len(other)) + header + other)
        assert fast.step(5, 1) == fastframes.RECEIVE
        got_header, got_body = client.recv()  # (whole, for the general path)
        assert bytes(got_header) == header and bytes(got_body or b"") == bytes(other)
        server.recv()


def test_a_peer_that_closes_mid_body_fails_the_step(
        pair: tuple[Connection, Connection]) -> None:
    _client, server = pair
    frames, fast, _ = ends(pair, IMAGE, gym.spaces.Discrete(4))
    data = framed_with_body(frames, image_reply(5))
    server.sock.sendall(data[:-100])
    server.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionResetError, match="middle of a reply's body"):
        fast.step(5, 1)


def test_images_beyond_the_client_s_message_limit_take_the_python_path() -> None:
    require_compiled(fastframes)
    frames = step_frames(IMAGE, gym.spaces.Discrete(4))
    assert frames is not None and frames.obs.in_body
    ours, theirs = socket.socketpair()
    try:
        roomy, small = Connection(ours, 1 << 20), Connection(ours, IMAGE.shape[0] * 64 * 3)
        assert fastframes.client_frames(roomy, frames, 1 << 20) is not None
        assert fastframes.client_frames(small, frames, 1 << 20) is None
    finally:
        ours.close()
        theirs.close()


def test_only_the_observation_may_travel_in_the_body(pair: tuple[Connection, Connection]
                                                      ) -> None:
    require_compiled(fastframes)
    from rlmesh.transport import _fastframes  # type: ignore[attr-defined]
    inline = (b"\xc7", np.empty(3))
    in_body = (b"\xc7", np.empty(3), lambda: np.empty(3))
    for action, replies in ((in_body, (inline,)), (inline, (inline, in_body, inline, inline))):
        with pytest.raises(ValueError, match="only a reply's observation"):
            _fastframes.ServerFrames(pair[1], np.ndarray, action, None, False, replies, (), 99)
