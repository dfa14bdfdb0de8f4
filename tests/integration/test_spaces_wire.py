"""Every Gymnasium space, info dicts and both client flavours over real sockets.

Each test serves an env in-process (``serve`` fixture, 127.0.0.1 port 0 or a unix socket in
``tmp_path``) and compares what a remote client sees with a local copy of the same env.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs

import rlmesh
from rlmesh.envs import SpaceEchoEnv
from rlmesh.numpy import RemoteEnv as NumpyRemoteEnv

pytestmark = pytest.mark.timeout(20)

Serve = Callable[..., rlmesh.EnvServer]


# -- helpers ----------------------------------------------------------------------------------


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_same(actual: Any, expected: Any, path: str = "value") -> None:
    """Strict recursive equality: container types, dtypes (with byte order), shapes, bytes."""
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__qualname__} != {type(expected).__qualname__} "
        f"({actual!r:.80} vs {expected!r:.80})")
    if isinstance(expected, np.ndarray):
        assert actual.dtype.str == expected.dtype.str, f"{path}: dtype {actual.dtype.str} != " \
            f"{expected.dtype.str}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, np.generic):
        assert actual.dtype.str == expected.dtype.str, f"{path}: dtype {actual.dtype.str} != " \
            f"{expected.dtype.str}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for (ka, va), (ke, ve) in zip(actual.items(), expected.items(), strict=True):
            assert_same(ka, ke, f"{path} key {ke!r}")
            assert_same(va, ve, f"{path}[{ke!r}]")
    elif isinstance(expected, (list, tuple)):  # includes GraphInstance (type checked above)
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, complex):
        assert _float_bits(actual.real) == _float_bits(expected.real), f"{path}: {actual!r}"
        assert _float_bits(actual.imag) == _float_bits(expected.imag), f"{path}: {actual!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_owned_arrays(value: Any) -> None:
    """Every array handed out is writable (owned by the caller)."""
    if isinstance(value, np.ndarray):
        assert value.flags.writeable
    elif isinstance(value, dict):
        for v in value.values():
            assert_owned_arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            assert_owned_arrays(v)


# -- the spaces -------------------------------------------------------------------------------

i8, i16, i32, i64 = (np.iinfo(t) for t in (np.int8, np.int16, np.int32, np.int64))
u8, u64 = np.iinfo(np.uint8), np.iinfo(np.uint64)
inf = np.inf

SPACES: dict[str, Callable[[], gs.Space[Any]]] = {
    # Box
    "box-f16-inf": lambda: gs.Box(-inf, inf, (3,), np.float16),
    "box-f16-fractions": lambda: gs.Box(np.float16(-0.1), np.float16(1 / 3), (2, 2),
                                        np.float16),
    "box-f32": lambda: gs.Box(-1.0, 1.0, (4,)),
    "box-f32-mixed": lambda: gs.Box(np.array([-1.0, -inf, 0.0, -3.5], np.float32),
                                    np.array([1.0, 5.0, inf, 1e-30], np.float32),
                                    dtype=np.float32),
    "box-f64-exact": lambda: gs.Box(np.array([0.1, 1 / 3, -np.pi]),
                                    np.array([0.2, 2 / 3, np.e]), dtype=np.float64),
    "box-f64-3d-inf": lambda: gs.Box(-inf, inf, (2, 3, 4), np.float64),
    "box-f32-scalar-shape": lambda: gs.Box(-2.5, 2.5, (), np.float32),
    "box-i8-extremes": lambda: gs.Box(int(i8.min), int(i8.max), (2, 2), np.int8),
    "box-i16-mixed": lambda: gs.Box(np.array([i16.min, -5, 0], np.int16),
                                    np.array([-1, 7, i16.max], np.int16), dtype=np.int16),
    "box-i32-extremes": lambda: gs.Box(int(i32.min), int(i32.max), (3,), np.int32),
    "box-i64-extremes": lambda: gs.Box(int(i64.min), int(i64.max), (3,), np.int64),
    "box-u8-image": lambda: gs.Box(0, 255, (4, 5, 3), np.uint8),
    "box-u8-image-large": lambda: gs.Box(0, 255, (64, 64, 3), np.uint8),
    "box-u64-extremes": lambda: gs.Box(0, int(u64.max), (2,), np.uint64),
    "box-bool": lambda: gs.Box(np.zeros(3, np.bool_), np.ones(3, np.bool_), dtype=np.bool_),
    # Discrete
    "discrete": lambda: gs.Discrete(5),
    "discrete-start": lambda: gs.Discrete(3, start=10),
    "discrete-negative-start": lambda: gs.Discrete(3, start=-1),
    "discrete-very-negative": lambda: gs.Discrete(4, start=-(2**40)),
    "discrete-int32": lambda: gs.Discrete(7, start=-2, dtype=np.int32),
    # MultiDiscrete
    "multidiscrete": lambda: gs.MultiDiscrete([3, 4, 5]),
    "multidiscrete-2d-start": lambda: gs.MultiDiscrete(np.array([[2, 3], [4, 5]]),
                                                       start=np.array([[-1, 0], [2, -5]])),
    "multidiscrete-int32-start": lambda: gs.MultiDiscrete([5, 5], dtype=np.int32,
                                                          start=[1, -2]),
    "multidiscrete-uint8": lambda: gs.MultiDiscrete([255, 2], dtype=np.uint8),
    # MultiBinary
    "multibinary": lambda: gs.MultiBinary(5),
    "multibinary-2d": lambda: gs.MultiBinary([2, 3]),
    # Text
    "text": lambda: gs.Text(5),
    "text-charset-order": lambda: gs.Text(8, min_length=2, charset="zyxwvu"),
    "text-unicode": lambda: gs.Text(4, min_length=0, charset="é✓\U0001f600ba"),
    # containers
    "dict-nested": lambda: gs.Dict({
        "pos": gs.Box(-1.0, 1.0, (2,), np.float64),
        "inner": gs.Dict({"a": gs.Discrete(3, start=-1),
                          "b": gs.Tuple((gs.MultiBinary(2), gs.Text(4, charset="dcba")))}),
        "flags": gs.MultiDiscrete([2, 2]),
    }),
    "dict-unsorted-keys": lambda: gs.Dict({"zeta": gs.Discrete(2), "alpha": gs.Discrete(9),
                                           "mu": gs.Box(0, 1, (1,))}, sort_keys=False),
    "dict-large-arrays": lambda: gs.Dict({
        "a": gs.Box(-1, 1, (300,), np.float64),
        "b": gs.Box(0, 255, (40, 40), np.uint8),
        "c": gs.Box(-1, 1, (3,), np.float32),
        "d": gs.Box(-1, 1, (17, 31), np.float16),
    }),
    "dict-empty": lambda: gs.Dict({}),
    "tuple-nested": lambda: gs.Tuple((
        gs.Discrete(3),
        gs.Tuple((gs.Box(-1, 1, (2,), np.float64), gs.MultiDiscrete([2, 2]))),
        gs.Dict({"x": gs.Text(3), "y": gs.Tuple(())}),
    )),
    "tuple-empty": lambda: gs.Tuple(()),
    # Sequence
    "sequence-box": lambda: gs.Sequence(gs.Box(-1, 1, (2,)), stack=False),
    "sequence-discrete-stacked": lambda: gs.Sequence(gs.Discrete(4, start=-2), stack=True),
    "sequence-box-stacked": lambda: gs.Sequence(gs.Box(-1, 1, (2, 2), np.float64), stack=True),
    "sequence-dict": lambda: gs.Sequence(gs.Dict({"a": gs.Discrete(2),
                                                  "b": gs.Box(0, 1, (1,))})),
    # Graph
    "graph-box-discrete": lambda: gs.Graph(gs.Box(-1, 1, (3,)), gs.Discrete(4)),
    "graph-discrete-box": lambda: gs.Graph(gs.Discrete(5, start=1),
                                           gs.Box(0, 1, (2,), np.float64)),
    "graph-no-edges": lambda: gs.Graph(gs.Discrete(5), None),
    "graph-box-no-edges": lambda: gs.Graph(gs.Box(-1, 1, (2,)), None),
    # OneOf
    "oneof": lambda: gs.OneOf((gs.Discrete(3), gs.Box(-1, 1, (2,)))),
    "oneof-nested": lambda: gs.OneOf((
        gs.Dict({"a": gs.Discrete(2), "b": gs.MultiBinary(3)}),
        gs.Tuple((gs.Text(2), gs.Discrete(2, start=-1))),
        gs.MultiDiscrete([3, 3]),
    )),
    "kitchen-sink": lambda: gs.Dict({
        "obs": gs.Tuple((gs.Box(-inf, inf, (3,), np.float16), gs.Discrete(2))),
        "seq": gs.Sequence(gs.OneOf((gs.Discrete(2), gs.Text(3)))),
        "graph": gs.Graph(gs.Box(0, 1, (2,)), gs.Discrete(3)),
        "choice": gs.OneOf((gs.Sequence(gs.Box(0, 1, (1,)), stack=True),
                            gs.MultiBinary([2, 2]))),
    }),
}


@pytest.mark.parametrize("make_space", list(SPACES.values()), ids=list(SPACES))
def test_space_echo_round_trip(serve: Serve, make_space: Callable[[], gs.Space[Any]]) -> None:
    server = serve(SpaceEchoEnv(make_space()))
    local = SpaceEchoEnv(make_space())
    space = make_space()
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert env.observation_space == space
        assert env.action_space == space
        assert space == env.observation_space
        assert type(env.observation_space) is type(space)
        for seed in (0, 1, 12345):
            obs, info = env.reset(seed=seed)
            local_obs, local_info = local.reset(seed=seed)
            assert_same(obs, local_obs, f"reset(seed={seed}) obs")
            assert_same(info, local_info, f"reset(seed={seed}) info")
            assert_owned_arrays(obs)
            env.action_space.seed(seed)
            for i in range(3):
                action = env.action_space.sample()
                assert space.contains(action)
                obs, reward, terminated, truncated, info = env.step(action)
                local_obs, local_reward, local_term, local_trunc, _ = local.step(action)
                where = f"seed {seed} step {i}"
                assert_same(obs, local_obs, f"{where} obs")
                assert_same(reward, local_reward, f"{where} reward")
                assert_same(terminated, local_term, f"{where} terminated")
                assert_same(truncated, local_trunc, f"{where} truncated")
                assert list(info) == ["action"]
                assert_same(info["action"], action, f"{where} info['action']")
                assert_owned_arrays(obs)
                assert_owned_arrays(info)


@pytest.mark.parametrize("make_space", list(SPACES.values()), ids=list(SPACES))
def test_client_spaces_sample_like_the_server(serve: Serve,
                                              make_space: Callable[[], gs.Space[Any]]) -> None:
    # The client's rebuilt spaces behave like the server's: same seed, same samples (this
    # needs dtypes, Dict key order and Text charset order to survive the trip).
    server = serve(SpaceEchoEnv(make_space()))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        for seed in (0, 7):
            reference = make_space()
            reference.seed(seed)
            env.observation_space.seed(seed)
            for _ in range(3):
                assert_same(env.observation_space.sample(), reference.sample())


def test_action_and_observation_spaces_may_differ(serve: Serve) -> None:
    obs_space = gs.Dict({"img": gs.Box(0, 255, (8, 8), np.uint8), "t": gs.Discrete(100)})
    act_space = gs.OneOf((gs.Discrete(3, start=-1), gs.Box(-1, 1, (2,), np.float64)))
    server = serve(SpaceEchoEnv(obs_space, act_space))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert env.observation_space == obs_space
        assert env.action_space == act_space
        env.reset(seed=3)
        env.action_space.seed(3)
        for _ in range(5):
            action = env.action_space.sample()
            obs, _, _, _, info = env.step(action)
            assert obs_space.contains(obs)
            assert_same(info["action"], action)


def test_invalid_action_is_refused_and_the_session_continues(serve: Serve) -> None:
    space = gs.Box(-1, 1, (2,), np.float32)
    server = serve(SpaceEchoEnv(space))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(np.array([5.0, 0.0], np.float32))
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(np.zeros(3, np.float32))
        action = np.array([0.5, -0.5], np.float32)
        _, _, _, _, info = env.step(action)
        assert_same(info["action"], action)


# -- info dicts -------------------------------------------------------------------------------


class InfoEnv:
    """Observes 0 then 1; ``reset`` and ``step`` return ``make_info()`` as the info."""

    metadata: dict[str, Any] = {"render_modes": []}
    render_mode = None

    def __init__(self, make_info: Callable[[], dict[Any, Any]],
                 make_obs: Callable[[], Any] | None = None) -> None:
        self.observation_space = gs.Discrete(2)
        self.action_space = gs.Discrete(2)
        self.make_info = make_info
        self.make_obs = make_obs

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[Any, Any]]:
        return np.int64(0), self.make_info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[Any, Any]]:
        obs = self.make_obs() if self.make_obs is not None else np.int64(1)
        return obs, 0.5, False, False, self.make_info()

    def close(self) -> None:
        pass


def rich_info() -> dict[Any, Any]:
    return {
        "f16": np.float16(1.5),
        "f32": np.float32(-2.25),
        "f64": np.float64(math.pi),
        "i8": np.int8(-128),
        "u64": np.uint64(2**64 - 1),
        "bool": np.bool_(True),
        "c64": np.complex64(1 - 1j),
        "nested": {
            "big_endian": np.arange(6, dtype=">i4").reshape(2, 3),
            "list": [np.uint16(7), np.arange(3, dtype=np.uint8), {"deeper": np.int32(-5)}],
            "tuple": (np.float64(0.1), np.zeros((0, 2), np.float32), (np.int16(3),)),
            "transposed": np.arange(12, dtype=np.int64).reshape(3, 4).T,
        },
        "big": np.linspace(0, 1, 1000, dtype=np.float32),  # out of band
        "big2": np.arange(5000, dtype=np.uint16)[::2],
        "strings": np.array(["a", "bc", "déf"]),
        "bytes_arr": np.array([b"x", b"yz"]),
        3: "int key",
        "python": [1, 2.5, None, "s", b"b", 2**70, 1j, True, (1, 2)],
        "graph": gs.GraphInstance(np.ones((2, 2), np.float32), None, None),
    }


def test_info_with_numpy_values_round_trips(serve: Serve) -> None:
    server = serve(InfoEnv(rich_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        obs, info = env.reset(seed=0)
        assert_same(obs, np.int64(0))
        assert_same(info, rich_info(), "reset info")
        for _ in range(2):
            obs, reward, terminated, truncated, info = env.step(np.int64(1))
            assert_same(obs, np.int64(1))
            assert_same(reward, 0.5)
            assert_same(terminated, False)
            assert_same(truncated, False)
            assert_same(info, rich_info(), "step info")
            assert_owned_arrays(info)


def test_info_with_numpy_string_scalars_round_trips(serve: Serve) -> None:
    # Scalars taken out of string arrays; the empty ones have a zero-size dtype ("<U0").
    names = np.array(["alice", ""])
    blobs = np.array([b"x", b""])

    def make_info() -> dict[str, Any]:
        return {"name": names[0], "empty_name": names[1], "blob": blobs[0], "empty": blobs[1]}

    server = serve(InfoEnv(make_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        _, info = env.reset()
        assert_same(info, make_info())
        _, _, _, _, info = env.step(0)
        assert_same(info, make_info())


class _WireOpaque:
    def __repr__(self) -> str:
        return "<opaque thing>"


def unencodable_info() -> dict[str, Any]:
    return {
        "set": {1, 2, 3},
        "obj": _WireOpaque(),
        "nested": {"list": [_WireOpaque(), 1, (frozenset(), 2)]},
        "objarr": np.array([None, 1], dtype=object),
        "fine": np.float32(2.0),
        "fine_array": np.arange(3, dtype=np.int8),
    }


def unencodable_info_expected() -> dict[str, Any]:
    return {
        "set": repr({1, 2, 3}),
        "obj": "<opaque thing>",
        "nested": {"list": ["<opaque thing>", 1, (repr(frozenset()), 2)]},
        "objarr": repr(np.array([None, 1], dtype=object)),
        "fine": np.float32(2.0),
        "fine_array": np.arange(3, dtype=np.int8),
    }


@pytest.mark.filterwarnings("ignore::rlmesh.errors.RLMeshWarning")
def test_unencodable_info_values_arrive_as_repr(serve: Serve) -> None:
    server = serve(InfoEnv(unencodable_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        obs, info = env.reset(seed=1)
        assert_same(obs, np.int64(0))
        assert_same(info, unencodable_info_expected(), "reset info")
        for _ in range(3):  # the step does not fail, and neither does the next one
            obs, reward, _, _, info = env.step(1)
            assert_same(obs, np.int64(1))
            assert_same(reward, 0.5)
            assert_same(info, unencodable_info_expected(), "step info")
        assert env.ping("still here") == "still here"


def test_unencodable_observation_is_an_encode_error(serve: Serve) -> None:
    server = serve(InfoEnv(dict, make_obs=lambda: {"bad": {1, 2}}))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        env.reset()
        with pytest.raises(rlmesh.EncodeError):
            env.step(1)
        obs, info = env.reset()  # not fatal: the session goes on
        assert_same(obs, np.int64(0))
        assert_same(info, {})


def test_unencodable_action_is_refused_locally(serve: Serve) -> None:
    server = serve(SpaceEchoEnv(gs.Discrete(3)))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        env.reset()
        with pytest.raises(rlmesh.EncodeError):
            env.step(object())
        _, _, _, _, info = env.step(np.int64(2))  # the connection is still usable
        assert_same(info["action"], np.int64(2))


# -- the plain client -------------------------------------------------------------------------


def test_plain_client_returns_builtin_values(serve: Serve) -> None:
    def obs_space() -> gs.Space[Any]:
        return gs.Dict({
            "pos": gs.Box(-1, 1, (2,), np.float64),
            "grid": gs.Box(0, 9, (2, 2), np.int32),
            "id": gs.Discrete(3, start=5),
            "pair": gs.Tuple((gs.Discrete(2), gs.MultiBinary(3))),
            "text": gs.Text(4, charset="ab"),
            "flag": gs.Box(np.zeros((), np.bool_), np.ones((), np.bool_), dtype=np.bool_),
        }, sort_keys=False)

    act_space = gs.Box(-1, 1, (2,), np.float32)
    server = serve(SpaceEchoEnv(obs_space(), act_space))
    local = SpaceEchoEnv(obs_space(), act_space)
    with rlmesh.RemoteEnv(server.address, timeout=10) as env:
        obs, info = env.reset(seed=4)
        lobs, _ = local.reset(seed=4)
        expected = {
            "pos": [float(x) for x in lobs["pos"]],
            "grid": [[int(x) for x in row] for row in lobs["grid"]],
            "id": int(lobs["id"]),
            "pair": (int(lobs["pair"][0]), [int(x) for x in lobs["pair"][1]]),
            "text": str(lobs["text"]),
            "flag": bool(lobs["flag"]),
        }
        assert_same(obs, expected)
        assert_same(info, {})

        obs, reward, terminated, truncated, info = env.step([0.25, -0.5])  # a plain action
        lobs, *_ = local.step(np.array([0.25, -0.5], np.float32))
        assert_same(obs["pos"], [float(x) for x in lobs["pos"]])
        assert_same(obs["id"], int(lobs["id"]))
        assert_same(reward, 0.0)
        assert_same(terminated, False)
        assert_same(truncated, False)
        assert_same(info, {"action": [0.25, -0.5]})

        _, _, _, _, info = env.step(np.array([1.0, -1.0], np.float32))  # numpy still works
        assert_same(info, {"action": [1.0, -1.0]})


def test_plain_client_converts_info_and_keeps_containers(serve: Serve) -> None:
    server = serve(InfoEnv(rich_info))
    with rlmesh.RemoteEnv(server.address, timeout=10) as env:
        obs, info = env.reset()
        assert_same(obs, 0)
        _, reward, _, _, info = env.step(1)
        assert_same(reward, 0.5)
        assert_same(info["f16"], 1.5)
        assert_same(info["u64"], 2**64 - 1)
        assert_same(info["bool"], True)
        assert_same(info["c64"], complex(1, -1))
        assert_same(info["nested"]["big_endian"], [[0, 1, 2], [3, 4, 5]])
        assert_same(info["nested"]["tuple"], (0.1, [], (3,)))
        assert_same(info["nested"]["list"], [7, [0, 1, 2], {"deeper": -5}])
        assert_same(info["strings"], ["a", "bc", "déf"])
        assert_same(info["bytes_arr"], [b"x", b"yz"])
        assert_same(info[3], "int key")
        assert_same(info["big"], np.linspace(0, 1, 1000, dtype=np.float32).tolist())
        assert_same(info["graph"], gs.GraphInstance([[1.0, 1.0], [1.0, 1.0]], None, None))


def test_plain_client_accepts_plain_container_actions(serve: Serve) -> None:
    act_space = gs.Dict({"move": gs.Box(-1, 1, (2,), np.float32), "pick": gs.Discrete(2),
                         "both": gs.Tuple((gs.MultiBinary(2), gs.MultiDiscrete([3, 3])))})
    server = serve(SpaceEchoEnv(gs.Discrete(2), act_space))
    with rlmesh.RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        action = {"both": ([1, 0], [2, 0]), "move": [0.5, 0.5], "pick": 1}
        _, _, _, _, info = env.step(action)
        assert_same(info["action"], {"both": ([1, 0], [2, 0]), "move": [0.5, 0.5], "pick": 1})


# -- unix sockets -----------------------------------------------------------------------------


def test_unix_socket_address(serve: Serve, tmp_path: Any) -> None:
    path = tmp_path / "rl.sock"
    assert len(str(path)) < 100, "tmp_path too long for a unix socket"
    space = gs.Dict({"img": gs.Box(0, 255, (48, 48, 3), np.uint8),
                     "vec": gs.Box(-1, 1, (5,), np.float64), "n": gs.Discrete(4)})
    server = serve(SpaceEchoEnv(space), address=f"unix://{path}")
    assert server.address == f"unix://{path}"
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    local = SpaceEchoEnv(gs.Dict({"img": gs.Box(0, 255, (48, 48, 3), np.uint8),
                                  "vec": gs.Box(-1, 1, (5,), np.float64),
                                  "n": gs.Discrete(4)}))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert env.observation_space == space
        obs, _ = env.reset(seed=11)
        assert_same(obs, local.reset(seed=11)[0])
        env.action_space.seed(11)
        for _ in range(3):
            action = env.action_space.sample()
            obs, _, _, _, info = env.step(action)
            assert_same(obs, local.step(action)[0])
            assert_same(info["action"], action)
    with rlmesh.RemoteEnv(server.address, timeout=10) as plain:  # the next session
        obs, _ = plain.reset(seed=11)
        assert obs["n"] == int(local.reset(seed=11)[0]["n"])
    server.shutdown()
    assert not path.exists()
