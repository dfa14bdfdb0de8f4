"""OldGymEnv and compat="gym" without an isolated stack: old-API envs built here.

The space and env classes come from the ``gym`` package of this venv (0.26.2); the 0.21
dialect (4-value steps, ``seed()``, ``render(mode=)``) is a small hand-written env using
them. The venv's numpy 2 breaks gym's own env checker, so the real CartPole is made with
``disable_env_checker=True``; tests/compat/test_isolated_stacks.py runs it as shipped.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs
from gymnasium.utils.env_checker import check_env

from rlmesh import EnvServer
from rlmesh.errors import CompatError, UnsupportedSpaceError
from rlmesh.numpy import RemoteEnv
from rlmesh.server.compat import make_gym, with_compat
from rlmesh.server.oldgym import OldGymEnv
from rlmesh.server.oldgym_spaces import gymnasium_space
from tests.support.deps import need
from tests.support.spaces import assert_space_identical

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    old = need("gym")


def test_every_old_space_becomes_the_same_gymnasium_space() -> None:
    low = np.array([-np.inf, -1.5, 0.1], dtype=np.float32)
    high = np.array([np.inf, 2.5, np.nextafter(np.float32(0.2), np.float32(1))], dtype=np.float32)
    cases: list[tuple[Any, gs.Space[Any]]] = [
        (old.spaces.Box(low, high, dtype=np.float32), gs.Box(low, high, dtype=np.float32)),
        (old.spaces.Box(0, 255, (2, 3), np.uint8), gs.Box(0, 255, (2, 3), np.uint8)),
        (old.spaces.Discrete(4, start=-2), gs.Discrete(4, start=-2)),
        (old.spaces.MultiDiscrete([3, 5], dtype=np.int32), gs.MultiDiscrete([3, 5], np.int32)),
        (old.spaces.MultiBinary([2, 3]), gs.MultiBinary([2, 3])),
        (old.spaces.Text(7, min_length=2, charset="abc"), gs.Text(7, min_length=2, charset="abc")),
        (old.spaces.Sequence(old.spaces.Discrete(3)), gs.Sequence(gs.Discrete(3))),
        (old.spaces.Tuple([old.spaces.Discrete(2), old.spaces.MultiBinary(3)]),
         gs.Tuple([gs.Discrete(2), gs.MultiBinary(3)])),
        (old.spaces.Graph(old.spaces.Box(0, 1, (2,)), old.spaces.Discrete(3)),
         gs.Graph(gs.Box(0, 1, (2,)), gs.Discrete(3))),
    ]
    for before, expected in cases:
        assert_space_identical(gymnasium_space(before), expected, repr(before))


def test_a_dict_keeps_its_key_order_and_nests() -> None:
    from collections import OrderedDict

    before = old.spaces.Dict(OrderedDict(
        z=old.spaces.Discrete(2), a=old.spaces.Dict({"x": old.spaces.Box(-1, 1, (2,))})))
    after = gymnasium_space(before)
    assert isinstance(after, gs.Dict) and list(after.spaces) == ["z", "a"]
    assert_space_identical(after["a"], gs.Dict({"x": gs.Box(-1, 1, (2,))}))


def test_an_unknown_space_is_refused_by_name() -> None:
    class Odd:
        pass

    with pytest.raises(UnsupportedSpaceError, match=r"test_oldgym_adapter.*Odd.*Box, Discrete"):
        gymnasium_space(Odd())


class V21Env:
    """The gym 0.21 dialect: reset() -> obs, step -> 4 values, seed(), render(mode=)."""

    metadata = {"render.modes": ["rgb_array"], "video.frames_per_second": 30}

    def __init__(self, limit: int = 3, fall_at: int | None = None) -> None:
        self.observation_space = old.spaces.Box(-10, 10, (1,), np.float64)
        self.action_space = old.spaces.Discrete(2)
        self.limit, self.fall_at = limit, fall_at
        self.seeds: list[int] = []
        self.t = 0
        self.value = 0.0
        self.closed = False

    def seed(self, seed: int) -> list[int]:
        self.seeds.append(seed)
        self.value = float(np.random.default_rng(seed).uniform(-1, 1))
        return [seed]

    def reset(self) -> np.ndarray:
        self.t = 0
        return np.array([self.value])

    def step(self, action: int) -> tuple[Any, float, bool, dict[str, Any]]:
        self.t += 1
        fell = self.fall_at is not None and self.t >= self.fall_at
        info: dict[str, Any] = {"t": self.t}
        if self.t >= self.limit and not fell:
            info["TimeLimit.truncated"] = True
        return np.array([self.value + self.t]), 1.0, fell or self.t >= self.limit, info

    def render(self, mode: str = "human") -> Any:
        return np.full((2, 2, 3), 7, np.uint8) if mode == "rgb_array" else None

    def close(self) -> None:
        self.closed = True


def test_the_old_dialect_is_translated() -> None:
    inner = V21Env(limit=3)
    env = OldGymEnv(inner, gym_version="0.21.0", render_mode="rgb_array")
    obs, info = env.reset(seed=5)
    assert inner.seeds == [5] and info == {}
    assert obs[0] == np.random.default_rng(5).uniform(-1, 1)
    assert env.step(0)[2:4] == (False, False)
    assert env.step(0)[2:4] == (False, False)
    *_, terminated, truncated, info = env.step(0)
    assert (terminated, truncated) == (False, True) and info["t"] == 3
    env.reset()
    assert inner.seeds == [5]  # no seed, no reseeding
    assert env.render().shape == (2, 2, 3)
    assert env.metadata["render_modes"] == ["rgb_array"] and env.metadata["render_fps"] == 30
    assert env.metadata["gym_version"] == "0.21.0"
    with pytest.raises(ValueError, match=r"reset options need gym>=0\.26"):
        env.reset(options={"x": 1})
    env.close()
    assert inner.closed


def test_a_fall_before_the_limit_is_terminated_not_truncated() -> None:
    env = OldGymEnv(V21Env(limit=5, fall_at=2), gym_version="0.21.0")
    env.reset(seed=0)
    assert env.step(1)[2:4] == (False, False)
    assert env.step(1)[2:4] == (True, False)


def test_an_old_dialect_env_is_served_and_passes_check_env(serve: Any) -> None:
    server = serve(lambda: OldGymEnv(V21Env(limit=40), gym_version="0.21.0"))
    with RemoteEnv(server.address) as env:
        check_env(env, skip_render_check=True)
        env.reset(seed=3)
        for _ in range(39):
            assert env.step(1)[2:4] == (False, False)
        assert env.step(1)[2:4] == (False, True)


def _cartpole(**kwargs: Any) -> Any:
    return old.make("CartPole-v1", disable_env_checker=True, **kwargs)


def test_the_real_old_cartpole_is_served_bit_exact(serve: Any) -> None:
    actions = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]
    local = _cartpole(max_episode_steps=8)
    expected = [local.reset(seed=0)[0]] + [local.step(a)[0] for a in actions[:8]]
    server = serve(lambda: _cartpole(max_episode_steps=8), compat="gym")
    assert server.env_contract.id == "gym/CartPole-v1"
    with RemoteEnv(server.address) as env:
        assert env.metadata["gym_version"] == old.__version__
        assert env.observation_space == gs.Box(local.observation_space.low,
                                               local.observation_space.high, (4,), np.float32)
        got = [env.reset(seed=0)[0]]
        flags = []
        for a in actions[:8]:
            obs, _, terminated, truncated, _ = env.step(a)
            got.append(obs)
            flags.append((terminated, truncated))
        assert [o.tobytes() for o in got] == [o.tobytes() for o in expected]
        assert flags[-1] == (False, True) and set(flags[:-1]) == {(False, False)}
        check_env(env, skip_render_check=True)


def test_make_gym_gives_an_old_id_its_namespace() -> None:
    env = make_gym("CartPole-v1", disable_env_checker=True)
    assert isinstance(env, OldGymEnv) and env.spec is not None
    assert env.spec.id == "gym/CartPole-v1" and env.spec.max_episode_steps == 500
    env.close()


def test_compat_needs_the_old_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gym", None)  # import gym -> ImportError
    with pytest.raises(CompatError, match=r"--compat gym needs the old gym package.*--with"):
        EnvServer("CartPole-v1", "127.0.0.1:0", compat="gym")
    with pytest.raises(ImportError):  # a CompatError is an ImportError too
        with_compat("CartPole-v1", "gym")


def test_compat_refuses_what_it_cannot_wrap() -> None:
    with pytest.raises(ValueError, match="compat must be one of gym"):
        with_compat("CartPole-v1", "gym0.21")
    with pytest.raises(TypeError, match="old gym package, not int"):
        with_compat(3, "gym")
    assert with_compat("CartPole-v1", None) == "CartPole-v1"


def test_the_command_line_targets_resolve_against_the_old_package() -> None:
    from rlmesh.cli.targets import load_target

    by_id = load_target("CartPole-v1", {"disable_env_checker": True}, compat="gym",
                        max_episode_steps=7)()
    by_callable = load_target("gym:make", {"id": "CartPole-v1", "disable_env_checker": True},
                              compat="gym", max_episode_steps=7)()
    for env in (by_id, by_callable):
        assert isinstance(env.unwrapped, OldGymEnv), env
        env.reset(seed=1)
        flags = [env.step(0)[2:4] for _ in range(7)]
        assert flags == [(False, False)] * 6 + [(False, True)]
        env.close()
    assert by_id.spec.max_episode_steps == 7
