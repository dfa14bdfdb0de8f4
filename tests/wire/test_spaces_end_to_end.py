"""Every Gymnasium space, info dicts and both client flavours over real sockets.

Each test serves an env in-process (``serve`` fixture, 127.0.0.1 port 0 or a unix socket in
``tmp_path``) and compares what a remote client sees with a local copy of the same env.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs

import rlmesh
from rlmesh.envs import SpaceEchoEnv
from rlmesh.numpy import RemoteEnv as NumpyRemoteEnv
from tests.support.spaces import SPACES as SHARED_SPACES
from tests.support.spaces import SpaceFactory, assert_space_identical, inf
from tests.support.values import assert_same

pytestmark = pytest.mark.timeout(20)

Serve = Callable[..., rlmesh.EnvServer]


# -- helpers ----------------------------------------------------------------------------------


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

# The shared catalogue plus a 3-d box and large arrays (which travel out of band).
SPACES: dict[str, SpaceFactory] = {
    **SHARED_SPACES,
    "box-f64-3d-inf": lambda: gs.Box(-inf, inf, (2, 3, 4), np.float64),
    "box-u8-image-large": lambda: gs.Box(0, 255, (64, 64, 3), np.uint8),
    "dict-large-arrays": lambda: gs.Dict({
        "a": gs.Box(-1, 1, (300,), np.float64),
        "b": gs.Box(0, 255, (40, 40), np.uint8),
        "c": gs.Box(-1, 1, (3,), np.float32),
        "d": gs.Box(-1, 1, (17, 31), np.float16),
    }),
}


@pytest.mark.parametrize("make_space", list(SPACES.values()), ids=list(SPACES))
def test_space_echo_round_trip(serve: Serve, make_space: SpaceFactory) -> None:
    server = serve(SpaceEchoEnv(make_space()))
    local = SpaceEchoEnv(make_space())
    space = make_space()
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert_space_identical(env.observation_space, space, "observation_space")
        assert_space_identical(env.action_space, space, "action_space")
        assert space == env.observation_space
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
                                              make_space: SpaceFactory) -> None:
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
        assert_space_identical(env.observation_space, obs_space, "observation_space")
        assert_space_identical(env.action_space, act_space, "action_space")
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


def assert_info_session(env: NumpyRemoteEnv, expected_info: Callable[[], dict[Any, Any]], *,
                        seed: int | None, steps: int, action: Any) -> None:
    """Reset, then step an ``InfoEnv``: obs 0 then 1, reward 0.5, ``expected_info()`` each time."""
    obs, info = env.reset(seed=seed)
    assert_same(obs, np.int64(0))
    assert_same(info, expected_info(), "reset info")
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(action)
        assert_same(obs, np.int64(1))
        assert_same(reward, 0.5)
        assert_same(terminated, False)
        assert_same(truncated, False)
        assert_same(info, expected_info(), "step info")
        assert_owned_arrays(info)


def test_info_with_numpy_values_round_trips(serve: Serve) -> None:
    server = serve(InfoEnv(rich_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert_info_session(env, rich_info, seed=0, steps=2, action=np.int64(1))


def test_info_with_numpy_string_scalars_round_trips(serve: Serve) -> None:
    # Scalars taken out of string arrays; the empty ones have a zero-size dtype ("<U0").
    names = np.array(["alice", ""])
    blobs = np.array([b"x", b""])

    def make_info() -> dict[str, Any]:
        return {"name": names[0], "empty_name": names[1], "blob": blobs[0], "empty": blobs[1]}

    server = serve(InfoEnv(make_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        assert_info_session(env, make_info, seed=None, steps=1, action=0)


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
        "objarr": np.array([None, 1], dtype=object),
        "fine": np.float32(2.0),
        "fine_array": np.arange(3, dtype=np.int8),
    }


@pytest.mark.filterwarnings("ignore::rlmesh.errors.RLMeshWarning")
def test_unencodable_info_values_arrive_as_repr(serve: Serve) -> None:
    server = serve(InfoEnv(unencodable_info))
    with NumpyRemoteEnv(server.address, timeout=10) as env:
        # The steps do not fail, and neither do the ones after them.
        assert_info_session(env, unencodable_info_expected, seed=1, steps=3, action=1)
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
        assert_space_identical(env.observation_space, space)
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
