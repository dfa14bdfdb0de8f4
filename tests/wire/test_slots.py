"""Slot steps: values written in place into link slots, read back exactly as the codec would.

Every value a slot step carries must arrive as the general decoder returns the same value
sent as a frame (types, dtypes, shapes, bytes, writability, no tie to the slot); a value of
another layout must be declined with nothing written; a slot the peer filled with anything
else must be refused with ``ProtocolError``, never another exception.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as gs

from rlmesh.errors import ProtocolError
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames, step_frames
from rlmesh.wire.slots import SlotSteps, slot_bytes
from tests.support.values import assert_same_values

KIND = 3
SLOT = 4096


def general(message: list[Any]) -> Any:
    """``message`` through the general codec, as a peer without slot steps reads it."""
    header, buffers, body_len = Encoder().encode(message)
    return Decoder().decode(header, bytearray(b"".join(buffers)) if body_len else None)


class Pair:
    """A client's and a server's SlotSteps over the two slots of one anonymous mapping."""

    def __init__(self, frames: StepFrames, rewards: bool = False) -> None:
        self.buf = mmap.mmap(-1, 2 * SLOT)
        view = memoryview(self.buf)
        self.request, self.reply = view[:SLOT], view[SLOT:]
        self.client = SlotSteps(frames, self.request, self.reply, KIND, rewards)
        self.server = SlotSteps(frames, self.reply, self.request, KIND, rewards)

    def close(self) -> None:
        self.client.release()
        self.server.release()
        self.request.release()
        self.reply.release()
        self.buf.close()  # (BufferError if a view of the slots survived release())


@pytest.fixture
def pair_of() -> Iterator[Any]:
    pairs: list[Pair] = []

    def make(obs: gs.Space[Any], act: gs.Space[Any], n: int | None = None,
             rewards: bool = False) -> Pair:
        frames = step_frames(obs, act, n)
        assert frames is not None and slot_bytes(frames) is not None
        pairs.append(Pair(frames, rewards))
        return pairs[-1]

    yield make
    for pair in pairs:
        pair.close()


def check_request(pair: Pair, rid: int, action: Any) -> Any:
    assert pair.client.write_request(rid, action)
    got = pair.server.read_request()
    assert_same_values(got, general([2, rid, action]), "slot request")
    return got[2]


def check_reply(pair: Pair, reply: list[Any]) -> list[Any]:
    assert pair.server.write_reply(reply)
    got = pair.client.read_reply(reply[1])
    assert_same_values(got, general(reply), "slot reply")
    return got


def test_cartpole_actions_keep_their_form(pair_of: Any) -> None:
    env = gym.make("CartPole-v1")
    pair = pair_of(env.observation_space, env.action_space)
    assert type(check_request(pair, 1, 1)) is int
    assert type(check_request(pair, 2**63, np.int64(0))) is np.int64
    zero_d = check_request(pair, 3, np.array(1, np.int64))
    assert type(zero_d) is np.ndarray and zero_d.shape == ()
    assert check_request(pair, 4, -(2**63)) == -(2**63)  # (the range check is the server's)


def test_cartpole_replies_are_the_general_codecs(pair_of: Any) -> None:
    env = gym.make("CartPole-v1")
    pair = pair_of(env.observation_space, env.action_space)
    env.reset(seed=0)
    for rid in range(1, 60):
        obs, reward, terminated, truncated, info = env.step(rid % 2)
        got = check_reply(pair, [0, rid, obs, reward, terminated, truncated, info])
        assert got[2].flags.writeable and got[2].flags.owndata
        pair.reply[16:32] = bytes(16)  # the slot is reused: what was read must not change
        np.testing.assert_array_equal(got[2], obs)
        if terminated:
            env.reset()


@pytest.mark.parametrize("obs,act", [
    (gs.Box(-1, 1, (3,), np.float64), gs.Box(-2, 2, (1,), np.float32)),
    (gs.Box(0, 255, (8, 8, 3), np.uint8), gs.Box(-1, 1, (2, 3), np.float64)),
    (gs.Box(-5, 5, (2,), np.int32), gs.Discrete(4, start=-1)),
    (gs.Box(0, 1, (), np.float32), gs.Box(0, 1, (), np.float16)),
], ids=["pendulum-like", "image-2d-action", "int32-obs-discrete", "scalars"])
def test_other_fixed_shapes(pair_of: Any, obs: gs.Space[Any], act: gs.Space[Any]) -> None:
    pair = pair_of(obs, act)
    obs.seed(1)
    act.seed(2)
    for rid in range(1, 20):
        check_request(pair, rid, act.sample())
        check_reply(pair, [0, rid, obs.sample(), -1.5 * rid, rid % 3 == 0, rid % 5 == 0, {}])


@pytest.mark.parametrize("n", [1, 8])
def test_vector_batches(pair_of: Any, n: int) -> None:
    venv = gym.make_vec("CartPole-v1", n, vectorization_mode="sync")
    pair = pair_of(venv.observation_space, venv.action_space, n)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for rid in range(1, 80):
        actions = rng.integers(0, 2, n)
        check_request(pair, rid, actions)
        got = check_reply(pair, [0, rid, *venv.step(actions)])
        assert all(value.flags.owndata for value in got[2:6])
    venv.close()


def test_vector_arrays_of_any_memory_layout_are_written_as_their_values(pair_of: Any) -> None:
    """The results are joined as bytes in C order: views, strides and orders change nothing."""
    venv = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    pair = pair_of(venv.observation_space, venv.action_space, 4)
    base = np.arange(32, dtype=np.float32).reshape(4, 8)
    rewards = np.arange(8, dtype=np.float64)[::2]  # (a strided view)
    flags = np.array([[True, False], [False, True], [True, True], [False, False]])
    for obs in (base[:, ::2], np.asfortranarray(base[:, :4]), base[:, :4].T.copy().T):
        assert not obs.flags.c_contiguous
        got = check_reply(pair, [0, 7, obs, rewards, flags[:, 0], flags[:, 1], {}])
        np.testing.assert_array_equal(got[2], obs)
    venv.close()


def test_results_are_declined_unless_every_array_has_the_layout(pair_of: Any) -> None:
    venv = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    pair = pair_of(venv.observation_space, venv.action_space, 4)
    pair.reply[:] = b"\xcd" * SLOT
    obs, rewards, flags = np.zeros((4, 4), np.float32), np.zeros(4), np.zeros(4, bool)
    for bad in ((obs.reshape(2, 8), rewards, flags, flags, {}),  # (same bytes, other shape)
                (obs, rewards.reshape(4, 1), flags, flags, {}),
                (obs, np.zeros(3), np.zeros(12, bool), flags, {}),  # (same total bytes)
                (obs.astype(">f4"), rewards, flags, flags, {}),
                (obs, rewards.astype(">f8"), flags, flags, {}),
                (obs, list(rewards), flags, flags, {}),
                (obs, rewards, flags, np.bool_(False), {}),
                (obs.view(np.recarray), rewards, flags, flags, {}),  # (a subclass)
                (obs, rewards, flags, flags, None),
                (obs, rewards, flags, flags, {"x": 1})):
        assert not pair.server.write_result(3, *bad), bad
    assert bytes(pair.reply) == b"\xcd" * SLOT
    assert pair.server.write_result(3, obs, rewards, flags, flags, {})
    venv.close()


def test_big_endian_spaces_keep_the_frames() -> None:
    frames = step_frames(gs.Box(0, 1, (4,), np.dtype(">f4")), gs.Discrete(2))
    assert frames is not None and slot_bytes(frames) is None


@pytest.mark.parametrize("kind", [float, np.float64, np.float32])
def test_numpy_scalar_rewards_keep_their_type_where_agreed(pair_of: Any, kind: type) -> None:
    """Pendulum's reward is a NumPy float64: agreed, its replies stay slot steps."""
    env = gym.make("Pendulum-v1")
    pair = pair_of(env.observation_space, env.action_space, None, True)
    assert pair.client.rewards == pair.server.rewards == (np.float64, np.float32)
    env.reset(seed=0)
    for rid in range(1, 40):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        got = check_reply(pair, [0, rid, obs, kind(reward), terminated, truncated, info])
        assert type(got[3]) is kind and got[3] == kind(reward)
    forms = {float: 0, np.float64: 1, np.float32: 2}
    assert int.from_bytes(pair.reply[4:8], "little") == forms[kind]
    # Not agreed: a NumPy reward is declined (a frame); a vector env's rewards are arrays.
    plain = pair_of(env.observation_space, env.action_space)
    assert plain.client.rewards == ()
    assert plain.server.write_reply([0, 1, obs, kind(reward), False, False, {}]) is (
        kind is float)
    venv = gym.make_vec("Pendulum-v1", 2, vectorization_mode="sync")
    assert pair_of(venv.observation_space, venv.action_space, 2, True).server.rewards == ()
    venv.close()


def test_float32_rewards_keep_their_bits(pair_of: Any) -> None:
    env = gym.make("Pendulum-v1")
    pair = pair_of(env.observation_space, env.action_space, None, True)
    obs = np.zeros(3, np.float32)
    for raw in (0x7F800001, 0x7FC00001, 0xFF800000, 0x00000001, 0x80000000):
        reward = np.frombuffer(np.uint32(raw).tobytes(), np.float32)[0]
        got = check_reply(pair, [0, 1, obs, reward, False, False, {}])
        assert type(got[3]) is np.float32 and got[3].tobytes() == reward.tobytes(), hex(raw)
        assert bytes(pair.reply[4:8]) == (2).to_bytes(4, "little")


def test_a_vector_reply_of_another_form_is_refused(pair_of: Any) -> None:
    venv = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    pair = pair_of(venv.observation_space, venv.action_space, 2, True)
    obs, flags = np.zeros((2, 4), np.float32), np.zeros(2, bool)
    assert pair.server.write_reply([0, 3, obs, np.zeros(2), flags, flags, {}])
    assert bytes(pair.reply[4:8]) == bytes(4)
    pair.reply[4:8] = (1).to_bytes(4, "little")
    with pytest.raises(ProtocolError, match="unknown form 1"):
        pair.client.read_reply(3)
    venv.close()


def test_a_reply_of_an_unknown_reward_form_is_refused(pair_of: Any) -> None:
    env = gym.make("Pendulum-v1")
    obs = np.zeros(3, np.float32)
    for agreed, forms in ((False, (1, 2, 3)), (True, (3, 2**32 - 1))):
        pair = pair_of(env.observation_space, env.action_space, None, agreed)
        assert pair.server.write_reply([0, 7, obs, 0.5, False, False, {}])
        for form in forms:
            pair.reply[4:8] = form.to_bytes(4, "little")
            with pytest.raises(ProtocolError, match=f"unknown form {form}"):
                pair.client.read_reply(7)


def test_values_of_other_layouts_are_declined_with_nothing_written(pair_of: Any) -> None:
    env = gym.make("CartPole-v1")
    pair = pair_of(env.observation_space, env.action_space)
    pair.request[:] = b"\xab" * SLOT
    pair.reply[:] = b"\xcd" * SLOT
    for action in (True, 2**63, np.int32(1), np.array([1]), np.array(1, np.int32), 1.0, "1",
                   None, [1]):
        assert not pair.client.write_request(9, action), action
    obs = np.zeros(4, np.float32)
    for reply in ([0, 9, obs, 1.0, False, False, {"x": 1}],
                  [0, 9, obs, np.float64(1.0), False, False, {}],
                  [0, 9, obs, 1.0, np.bool_(False), False, {}],
                  [0, 9, obs, 1, False, False, {}],
                  [0, 9, obs.astype(np.float64), 1.0, False, False, {}],
                  [0, 9, obs[:3], 1.0, False, False, {}],
                  [0, 9, list(obs), 1.0, False, False, {}],
                  [1, 9, obs, 1.0, False, False, {}],
                  [0, "9", obs, 1.0, False, False, {}],
                  [0, 9, obs, 1.0, False, {}]):
        assert not pair.server.write_reply(reply), reply
    assert bytes(pair.request) == b"\xab" * SLOT and bytes(pair.reply) == b"\xcd" * SLOT


def test_vector_values_of_other_layouts_are_declined(pair_of: Any) -> None:
    venv = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    pair = pair_of(venv.observation_space, venv.action_space, 4)
    obs, flags = np.zeros((4, 4), np.float32), np.zeros(4, bool)
    assert not pair.client.write_request(1, np.zeros(4, np.int32))
    assert not pair.client.write_request(1, np.zeros(3, np.int64))
    assert not pair.client.write_request(1, 1)
    for bad in ([0, 1, obs, np.zeros(4, np.float32), flags, flags, {}],
                [0, 1, obs, np.zeros(4), flags.astype(np.uint8), flags, {}],
                [0, 1, obs, np.zeros(4), flags, flags[:2], {}],
                [0, 1, obs, np.zeros(4), flags, flags, {"final_obs": obs}]):
        assert not pair.server.write_reply(bad)
    venv.close()


def test_a_slot_of_another_request_or_form_is_refused(pair_of: Any) -> None:
    pair = pair_of(gs.Box(0, 1, (2,), np.float32), gs.Box(0, 1, (2,), np.float32))
    assert pair.server.write_reply([0, 5, np.zeros(2, np.float32), 0.0, False, False, {}])
    with pytest.raises(ProtocolError, match="answered request 5, expected 6"):
        pair.client.read_reply(6)
    for form in (1, 2, 3, 2**32 - 1):  # (a Box action has neither ints nor scalars)
        pair.request[4:8] = form.to_bytes(4, "little")
        with pytest.raises(ProtocolError, match="unknown form"):
            pair.server.read_request()


def test_any_request_slot_is_read_or_refused_never_raises_otherwise(pair_of: Any) -> None:
    env = gym.make("CartPole-v1")
    pair = pair_of(env.observation_space, env.action_space)
    rng = np.random.default_rng(3)
    read = 0
    for _ in range(3000):
        pair.request[:64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        pair.request[4:8] = int(rng.integers(0, 4)).to_bytes(4, "little")  # (3: refused)
        try:
            got = pair.server.read_request()
        except ProtocolError:
            continue
        read += 1
        assert got[0] == 2 and type(got[1]) is int and 0 <= got[1] < 2**64
    assert read > 1500


def test_release_lets_the_region_close(pair_of: Any) -> None:
    env = gym.make("CartPole-v1")
    pair = pair_of(env.observation_space, env.action_space)
    kept = check_reply(pair, [0, 1, np.ones(4, np.float32), 1.0, False, False, {}])
    pair.close()  # (raises BufferError if the SlotSteps still held a view)
    np.testing.assert_array_equal(kept[2], np.ones(4, np.float32))  # (a copy, still readable)
    pair.client.release()  # idempotent


def test_images_larger_than_the_request_slot(pair_of: Any) -> None:
    """A reply's values need only the reply slot: an image too large for the request slot."""
    image = gs.Box(0, 255, (SLOT // 3 + 40,), np.uint8)  # (fits one slot, not a third of one)
    frames = step_frames(image, gs.Discrete(4))
    assert frames is not None and frames.obs.in_body
    buf = mmap.mmap(-1, SLOT // 3 + SLOT)
    view = memoryview(buf)
    request, reply = view[: SLOT // 3], view[SLOT // 3 :]
    client = SlotSteps(frames, request, reply, KIND)
    server = SlotSteps(frames, reply, request, KIND)
    rng = np.random.default_rng(0)
    for rid in range(1, 20):
        assert client.write_request(rid, rid % 4)
        assert_same_values(server.read_request(), general([2, rid, rid % 4]), "request")
        values = [0, rid, rng.integers(0, 256, image.shape, np.uint8), rid / 3,
                  rid % 5 == 0, False, {}]
        for reward in (values[3], np.float32(values[3])):  # (a declined form: nothing written)
            values[3] = reward
            if server.write_reply(values):
                assert_same_values(client.read_reply(rid), general(values), "reply")
    with pytest.raises(ValueError, match="fit neither slot"):
        SlotSteps(frames, request, request, KIND)
    for steps in (client, server):
        steps.release()
    request.release()
    reply.release()
    view.release()
    buf.close()
