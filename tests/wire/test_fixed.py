"""Fixed-shape step frames: the general codec's bytes and values, or a refusal.

Every frame the fast encoders produce must be byte for byte the general encoder's; every
value the fast decoders return must be exactly the general decoder's (types, dtypes, shapes,
bytes, writability); anything else must be refused (``None``), so that the general path sees
it, malformed input included.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as gs
from gymnasium.vector.utils import batch_space

from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames, contract_frames, step_frames
from rlmesh.wire.schema import space_to_schema
from tests.support.values import assert_same_values, joined, reply_header

RIDS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1]


def same_decoding(got: Any, header: bytes) -> None:
    want = Decoder().decode(header, None)
    assert_same_values(got, want, "fast decoding")
    for a, b in zip(got, want, strict=True):
        if isinstance(b, np.ndarray):
            assert a.flags.writeable == b.flags.writeable


def frames_of(obs: gs.Space[Any], act: gs.Space[Any], n: int | None = None) -> StepFrames:
    frames = step_frames(obs, act, n)
    assert frames is not None
    return frames


@pytest.mark.parametrize("rid", RIDS)
def test_cartpole_requests_and_replies_are_the_general_codecs(rid: int) -> None:
    env = gym.make("CartPole-v1")
    frames = frames_of(env.observation_space, env.action_space)
    env.reset(seed=rid % 100)
    for action in (np.int64(1), 0, 1, np.array(1)):
        header = frames.encode_request(rid, action)
        assert header == Encoder().encode([2, rid, action])[0]
        decoded = frames.decode_request(header)
        assert decoded is not None
        same_decoding(decoded, header)
    for _ in range(30):
        reply = [0, rid, *env.step(1)]
        header = reply_header(frames.encode_reply(reply))
        assert header == Encoder().encode(reply)[0]
        decoded = frames.decode_reply(header, None)
        assert decoded is not None
        same_decoding(decoded, header)
        if reply[4]:
            break
    else:
        pytest.fail("the episode never terminated")


@pytest.mark.parametrize(("obs", "act"), [
    (gs.Box(-1, 1, (3, 2), np.float64), gs.Box(-2, 2, (2,), np.float32)),
    (gs.Box(0, 255, (8, 8, 3), np.uint8), gs.Discrete(5, start=-2)),
    (gs.Box(-5, 5, (), np.int16), gs.Box(0, 1, (1,), np.float16)),
    (gs.Box(-1, 1, (2,), np.dtype(">f4")), gs.Box(-1, 1, (3,), np.dtype(">f8"))),
])
def test_other_fixed_shapes_match_the_general_codec(obs: gs.Space[Any], act: gs.Space[Any]
                                                    ) -> None:
    frames = frames_of(obs, act)
    rng = np.random.default_rng(0)
    obs.seed(1)
    act.seed(2)
    for rid in RIDS:
        action = act.sample()
        header = frames.encode_request(rid, action)
        assert header == Encoder().encode([2, rid, action])[0]
        same_decoding(frames.decode_request(header), header)
        sample = obs.sample()  # (a NumPy scalar for shape (): another layout)
        reply = [0, rid, sample, float(rng.normal()), bool(rid % 2), bool(rid % 3), {}]
        if not isinstance(sample, np.ndarray):
            assert frames.encode_reply(reply) is None
            reply[2] = np.asarray(sample)
        header = reply_header(frames.encode_reply(reply))
        assert header == Encoder().encode(reply)[0]
        same_decoding(frames.decode_reply(header, None), header)


@pytest.mark.parametrize("kind", [float, np.float64, np.float32])
def test_numpy_scalar_rewards_match_the_general_codec(kind: type) -> None:
    """Pendulum's reward is a NumPy float64: one env's reply keeps the fixed layout."""
    env = gym.make("Pendulum-v1")
    frames = frames_of(env.observation_space, env.action_space)
    env.reset(seed=0)
    for rid in RIDS:
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
        if kind is np.float64:
            assert type(reward) is np.float64  # (as Pendulum returns it)
        reply = [0, rid, obs, kind(reward), terminated, bool(rid % 2), info]
        header = reply_header(frames.encode_reply(reply))
        assert header == Encoder().encode(reply)[0]
        decoded = frames.decode_reply(header, None)
        assert decoded is not None and type(decoded[3]) is kind
        same_decoding(decoded, header)
    venv = gym.make_vec("Pendulum-v1", 2, vectorization_mode="sync")
    vector = frames_of(venv.observation_space, venv.action_space, 2)
    assert vector.rewards == ()  # (a vector env's rewards are an array)
    reply = [0, 1, np.zeros((2, 3), np.float32), np.float64(1.0), False, False, {}]
    assert vector.encode_reply(reply) is None
    venv.close()


@pytest.mark.parametrize("n", [1, 3, 8])
def test_vector_batches_match_the_general_codec(n: int) -> None:
    venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * n)
    frames = frames_of(venv.observation_space, venv.action_space, n)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    for rid in RIDS:
        actions = venv.action_space.sample()
        header = frames.encode_request(rid, actions)
        assert header == Encoder().encode([2, rid, actions])[0]
        same_decoding(frames.decode_request(header), header)
        reply = [0, rid, *venv.step(actions)]
        if reply[6]:
            continue
        header = reply_header(frames.encode_reply(reply))
        assert header == Encoder().encode(reply)[0]
        same_decoding(frames.decode_reply(header, None), header)


def test_values_of_other_layouts_are_refused() -> None:
    env = gym.make("CartPole-v1")
    frames = frames_of(env.observation_space, env.action_space)
    obs = np.zeros(4, np.float32)
    for action in (np.int32(1), 1.0, True, [1], np.array([1]), 2**64, -(2**63) - 1, "1"):
        assert frames.encode_request(1, action) is None, action
    for rid in (-1, 2**32, 1.0, "1", None):
        assert frames.encode_request(rid, 1) is None
        assert frames.encode_reply([0, rid, obs, 1.0, False, False, {}]) is None
    refused = [
        [1, 1, obs, 1.0, False, False, {}],               # an error status
        [0, 1, obs, 1.0, False, False, {"a": 1}],         # an info
        [0, 1, obs.astype(np.float64), 1.0, False, False, {}],
        [0, 1, obs[:3], 1.0, False, False, {}],
        [0, 1, np.ma.masked_array(obs), 1.0, False, False, {}],
        [0, 1, obs, 1, False, False, {}],                 # an int reward
        [0, 1, obs, np.float16(1.0), False, False, {}],  # (NumPy rewards: float64, 32)
        [0, 1, obs, np.int64(1), False, False, {}],
        [0, 1, obs, np.array(1.0), False, False, {}],
        [0, 1, obs, 1.0, np.bool_(False), False, {}],
        [0, 1, obs, 1.0, False, 0, {}],
        [0, 1, obs, 1.0, False, False],
        [False, 1, obs, 1.0, False, False, {}],
    ]
    for reply in refused:
        assert frames.encode_reply(reply) is None, reply


def test_vector_values_of_other_layouts_are_refused() -> None:
    venv = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    frames = frames_of(venv.observation_space, venv.action_space, 4)
    obs, rewards, flags = np.zeros((4, 4), np.float32), np.zeros(4), np.zeros(4, bool)
    assert frames.encode_reply([0, 1, obs, rewards, flags, flags, {}]) is not None
    for values in ((obs.reshape(2, 8), rewards, flags, flags),
                   (obs, rewards.reshape(4, 1), flags, flags),
                   (obs, np.zeros(3), np.zeros(12, bool), flags),  # (the same total bytes)
                   (obs, rewards.astype(np.float32), flags, flags),
                   (obs, rewards.astype(">f8"), flags, flags),
                   (obs, rewards, flags.astype(np.uint8), flags),
                   (obs, list(rewards), flags, flags),
                   (obs, rewards, flags, np.bool_(False)),
                   (obs, rewards.view(np.recarray), flags, flags)):
        assert frames.encode_reply([0, 1, *values, {}]) is None, values
    venv.close()


def test_frames_of_other_layouts_are_refused() -> None:
    env = gym.make("CartPole-v1")
    frames = frames_of(env.observation_space, env.action_space)
    encode = Encoder().encode
    good = reply_header(
        frames.encode_reply([0, 300, np.zeros(4, np.float32), 1.0, False, True, {}]))
    others = [
        encode([0, 300, np.zeros(4, np.float32), 1, False, True, {}])[0],
        encode([0, 300, np.zeros(4, np.float32), 1.0, False, True, {"k": 1}])[0],
        encode([0, 300, np.zeros(5, np.float32), 1.0, False, True, {}])[0],
        encode([0, 300, np.zeros(4, np.float64), 1.0, False, True, {}])[0],
        encode([1, 300, {"code": "x", "message": "y"}])[0],
        encode([0, -1, np.zeros(4, np.float32), 1.0, False, True, {}])[0],
        good[:-1], good[:-2] + b"\x80", good + b"\x80", b"", b"\x97", b"\x97\x00",
        b"\x97\x00\xce\x00", bytes([good[0], good[1], 0xD0]) + good[3:],
    ]
    for header in others:
        assert frames.decode_reply(header, None) is None, header.hex()
    assert frames.decode_reply(good, bytearray(4)) is None  # a body: the general path's
    assert frames.decode_reply(memoryview(good), None) is not None
    requests = [encode([2, 5, np.int32(1)])[0], encode([2, 5, 1.5])[0],
                encode([1, 5, np.int64(1)])[0], encode([2, 5, np.int64(1), 0])[0],
                encode([2, 5, np.zeros(2)])[0], b"\x93\x02\xd3", b"\x93\x02\x05\xcd\x01",
                b"\x93\x02\x05\xd3\x00", b"\x93\x02\x05\x01\x01", b"\x93", b""]
    for header in requests:
        assert frames.decode_request(header) is None, header.hex()


@pytest.mark.parametrize(("obs", "act", "n"), [
    (gs.Dict({"a": gs.Box(0, 1, (2,))}), gs.Discrete(2), None),
    (gs.Box(0, 1, (2,)), gs.Dict({"a": gs.Discrete(2)}), None),
    (gs.Discrete(4), gs.Discrete(2), None),
    (gs.Box(0, 1, (2,)), gs.Box(0, 1, (600,), np.float64), None),  # an action in a body
    (gs.Box(0, 1, (2,)), gs.Box(0, 1, (1,) * 33), None),  # more dimensions than the wire's
    (gs.Box(0, 1, (1,) * 33), gs.Discrete(2), None),
    (gs.Box(0, 1, (200, 4)), gs.Box(0, 1, (200,), np.int8), 200),  # rewards in a body
    (gs.Box(0, 1, (2,)), gs.MultiDiscrete([2, 2]), None),
    (gs.Box(0, 1, (2,)), gs.Text(5), None),
])
def test_contracts_without_fixed_shapes_have_no_frames(obs: gs.Space[Any], act: gs.Space[Any],
                                                       n: int | None) -> None:
    assert step_frames(obs, act, n) is None


def test_contract_frames_reads_env_and_vector_contracts() -> None:
    single = {"kind": "env", "observation_space": space_to_schema(gs.Box(0, 1, (4,))),
              "action_space": space_to_schema(gs.Discrete(2))}
    assert contract_frames(single) is not None
    vector = {"kind": "vector_env", "num_envs": 3,
              "observation_space": space_to_schema(batch_space(gs.Box(0, 1, (4,)), 3)),
              "action_space": space_to_schema(batch_space(gs.Discrete(2), 3))}
    assert contract_frames(vector) is not None
    assert contract_frames({"kind": "model"}) is None
    assert contract_frames({"kind": "env", "observation_space": "junk"}) is None
    assert contract_frames({"kind": "vector_env", **{k: v for k, v in vector.items()
                                                     if k != "num_envs"}}) is None


def mutations(frame: bytes, rng: np.random.Generator) -> list[bytes]:
    """``frame`` cut at every byte, grown by one, and 3000 times with a byte or two flipped."""
    variants = [frame[:i] for i in range(len(frame))] + [frame + b"\x00"]
    for _ in range(3000):
        mutated = bytearray(frame)
        for _ in range(int(rng.integers(1, 3))):
            mutated[int(rng.integers(len(mutated)))] = int(rng.integers(256))
        variants.append(bytes(mutated))
    return variants


@pytest.mark.parametrize(("vector", "reward"), [
    (False, float), (False, np.float64), (False, np.float32), (True, float)])
def test_mutated_frames_are_read_exactly_or_refused_never_raise(vector: bool, reward: type
                                                                ) -> None:
    """Every byte of a frame flipped, cut or grown: the general decoder's value, or None."""
    n = 3 if vector else None
    if vector:
        venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 3)
        frames = frames_of(venv.observation_space, venv.action_space, n)
        venv.reset(seed=0)
        actions = np.array([0, 1, 1])
        reply = [0, 70000, *venv.step(actions)]
    else:
        env = gym.make("CartPole-v1")
        frames = frames_of(env.observation_space, env.action_space)
        env.reset(seed=0)
        actions = np.int64(1)
        reply = [0, 70000, *env.step(1)]
        if reward is not float:
            reply[3] = reward(reply[3])
    request = frames.encode_request(70000, actions)
    answer = reply_header(frames.encode_reply(reply))
    assert request is not None
    rng = np.random.default_rng(7)
    decode = Decoder().decode
    for frame, read in ((request, frames.decode_request),
                        (answer, lambda h: frames.decode_reply(h, None))):
        variants = [*mutations(frame, rng), frame + frame]
        read_exactly = 0
        for header in variants:
            got = read(header)  # must not raise
            if got is None:
                continue
            read_exactly += 1
            assert_same_values(got, decode(header, None), f"mutated {header.hex()}")
        assert read_exactly > 100  # (mutated values and ids are still frames of the layout)


def same_body_decoding(got: Any, header: bytes, body: bytearray) -> None:
    """``got`` is what the general decoder returns for this header and body."""
    want = Decoder().decode(header, bytearray(body))
    assert_same_values(got, want, "fast decoding")
    assert got[2].flags.writeable == want[2].flags.writeable
    assert np.shares_memory(got[2], np.frombuffer(body, np.uint8))  # (a view, as the decoder's)


def in_body(frames: StepFrames, reply: list[Any]) -> tuple[bytes, bytearray]:
    """A reply's fixed frame, checked against the general encoder's: header and body."""
    encoded = frames.encode_reply(reply)
    assert encoded is not None
    header, buffers, body_len = encoded
    want = Encoder().encode(reply)
    assert header == want[0] and body_len == want[2] == len(joined(buffers))
    assert joined(buffers) == joined(want[1])
    return header, bytearray(joined(buffers))


@pytest.mark.parametrize(("obs", "act", "n"), [
    (gs.Box(0, 255, (224, 224, 3), np.uint8), gs.Discrete(4), None),
    (gs.Box(-1, 1, (600,), np.float64), gs.Box(-1, 1, (2,), np.float32), None),
    (gs.Box(-1, 1, (2, 300), np.dtype(">f4")), gs.Discrete(3), None),
    (gs.Box(0, 255, (2, 32, 32, 3), np.uint8), gs.MultiDiscrete([4, 4]), 2),
])
def test_observations_in_the_body_match_the_general_codec(
        obs: gs.Space[Any], act: gs.Space[Any], n: int | None) -> None:
    """Observations too large to travel inline: the general encoder's header and body."""
    frames = frames_of(obs, act, n)
    assert frames.obs.in_body and frames.obs.inline == 0
    obs.seed(3)
    act.seed(4)
    for rid in RIDS:
        action = act.sample()
        request = frames.encode_request(rid, action)  # (the action stays inline)
        assert request == Encoder().encode([2, rid, action])[0]
        same_decoding(frames.decode_request(request), request)
        sample = obs.sample()
        if n is None:
            reply = [0, rid, sample, float(rid) / 3, bool(rid % 2), bool(rid % 3), {}]
        else:
            reply = [0, rid, sample, np.arange(n) / 7, np.array([True, False]),
                     np.array([rid % 2 == 0] * n), {}]
        header, body = in_body(frames, reply)
        got = frames.decode_reply(header, body)
        assert got is not None
        same_body_decoding(got, header, body)
        if n is None:
            reply[3] = np.float32(2.5)  # (a NumPy reward: the same body)
            header, body = in_body(frames, reply)
            same_body_decoding(frames.decode_reply(header, body), header, body)


def test_views_and_other_orders_travel_as_their_c_order_bytes() -> None:
    frames = frames_of(gs.Box(0, 255, (64, 64, 3), np.uint8), gs.Discrete(2))
    image = np.random.default_rng(0).integers(0, 255, (64, 128, 3), np.uint8)
    for view in (np.asfortranarray(image[:, :64]), image[:, ::2], image[:, 64:]):
        assert not view.flags.c_contiguous
        header, body = in_body(frames, [0, 5, view, 1.0, False, False, {}])
        assert bytes(body) == view.tobytes()
        same_body_decoding(frames.decode_reply(header, body), header, body)


def test_replies_with_a_body_of_another_size_or_none_are_refused() -> None:
    frames = frames_of(gs.Box(0, 255, (40, 40), np.uint8), gs.Discrete(2))
    image = np.ones((40, 40), np.uint8)
    header, body = in_body(frames, [0, 9, image, 1.0, True, False, {}])
    assert frames.decode_reply(header, body) is not None
    assert frames.decode_reply(memoryview(header), memoryview(body)) is not None
    for other in (None, body[:-1], body + b"\x00", bytearray()):
        assert frames.decode_reply(header, other) is None
    encode = Encoder().encode
    for reply in ([0, 9, image[:20], 1.0, True, False, {}],       # (inline: no body)
                  [0, 9, np.ones((40, 41), np.uint8), 1.0, True, False, {}],
                  [0, 9, image, 1.0, True, False, {"k": 1}],
                  [0, 9, image, image, True, False, {}]):        # (two arrays in the body)
        assert frames.encode_reply(reply) is None
        header, buffers, _ = encode(reply)
        assert frames.decode_reply(header, bytearray(joined(buffers)) or None) is None


def test_mutated_headers_with_a_body_are_read_exactly_or_refused() -> None:
    frames = frames_of(gs.Box(0, 255, (30, 40), np.uint8), gs.Discrete(2))
    image = np.random.default_rng(1).integers(0, 255, (30, 40), np.uint8)
    header, body = in_body(frames, [0, 70000, image, -1.5, False, True, {}])
    rng = np.random.default_rng(8)
    read_exactly = 0
    for variant in mutations(header, rng):
        got = frames.decode_reply(variant, body)  # must not raise
        if got is not None:
            read_exactly += 1
            assert_same_values(got, Decoder().decode(variant, bytearray(body)), variant.hex())
    assert read_exactly > 100
