"""rlmesh.spaces' classes: Gymnasium's own behaviour, plus the reference's surface.

Statements from the reference docs (docs/api/spaces.md, docs/gymnasium.md) and the issue:
spaces keep ``sample``, ``contains`` and ``seed``; each has its ``spec`` and ``kind``; ``Box``
takes ``(low, high, shape, dtype)`` or a spec; ``MultiBinary`` takes ``shape=``; ``Text`` takes
``charset=``; ``contains`` takes ``value=``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as gs
from gymnasium.utils.env_checker import check_env

from rlmesh import spaces

pytestmark = pytest.mark.filterwarnings("ignore:.*precision lowered.*:UserWarning")

RLMESH_SPACES: dict[str, Any] = {
    "box": lambda: spaces.Box(-1.0, 1.0, shape=[2], dtype="float32"),
    "discrete": lambda: spaces.Discrete(5, start=2),
    "multi_binary": lambda: spaces.MultiBinary([2, 3]),
    "multi_discrete": lambda: spaces.MultiDiscrete([2, 3], dtype="int64"),
    "text": lambda: spaces.Text(8, min_length=1, charset="abc"),
    "dict": lambda: spaces.Dict({"obs": spaces.Box(0, 1, (2,)), "id": spaces.Discrete(3)}),
    "tuple": lambda: spaces.Tuple([spaces.Box(-1, 1, (1,)), spaces.Discrete(2)]),
}
GYM_CLASS = {"box": gs.Box, "discrete": gs.Discrete, "multi_binary": gs.MultiBinary,
             "multi_discrete": gs.MultiDiscrete, "text": gs.Text, "dict": gs.Dict,
             "tuple": gs.Tuple}


@pytest.mark.parametrize("kind", RLMESH_SPACES)
def test_each_space_is_its_gymnasium_class_with_kind_and_spec(kind: str) -> None:
    space = RLMESH_SPACES[kind]()
    assert isinstance(space, GYM_CLASS[kind])
    assert space.kind == kind
    assert space.spec.kind == kind
    assert isinstance(space.spec, spaces.SpaceSpec)


@pytest.mark.parametrize("kind", RLMESH_SPACES)
def test_sampling_and_seeding_are_gymnasiums(kind: str) -> None:
    ours = RLMESH_SPACES[kind]()
    plain = ours.to_gymnasium_space()
    assert type(plain) is GYM_CLASS[kind]
    ours.seed(7)
    plain.seed(7)
    for _ in range(5):
        a, b = ours.sample(), plain.sample()
        assert ours.contains(a)
        assert repr(a) == repr(b)


@pytest.mark.parametrize("kind", RLMESH_SPACES)
def test_contains_takes_value_by_keyword_or_position(kind: str) -> None:
    space = RLMESH_SPACES[kind]()
    sample = space.sample()
    assert space.contains(sample) and space.contains(value=sample) and space.contains(x=sample)
    assert sample in space
    with pytest.raises(TypeError):
        space.contains()


@pytest.mark.parametrize("kind", RLMESH_SPACES)
def test_equal_to_gymnasium_both_ways(kind: str) -> None:
    ours = RLMESH_SPACES[kind]()
    plain = ours.to_gymnasium_space()
    assert ours == plain and plain == ours



def test_box_forms() -> None:
    box = spaces.Box(-1.0, 1.0, shape=[2], dtype="float32")
    assert box.shape == [2] and box.shape == (2,)
    assert box.dtype == "float32" and box.dtype == np.float32
    assert box == spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
    assert spaces.Box(box.spec) == box
    assert spaces.Box(np.zeros(3), np.ones(3)).shape == (3,)
    with pytest.raises(TypeError, match="high"):
        spaces.Box(0.0)
    with pytest.raises(ValueError, match="'box'"):
        spaces.Box(spaces.Discrete(2).spec)


def test_box_bounds_kind() -> None:
    assert spaces.Box(-1.0, 1.0, (2,)).bounds_kind == "uniform"
    assert spaces.Box(-np.inf, np.inf, (2,)).bounds_kind == "unbounded"
    assert spaces.Box(np.array([0.0, 1.0]), np.array([1.0, 2.0])).bounds_kind == "elementwise"


def test_multi_binary_count_or_shape() -> None:
    counted = spaces.MultiBinary(4)
    assert (counted.size, counted.dims) == (4, None)
    shaped = spaces.MultiBinary(shape=[2, 3])
    assert (shaped.size, shaped.dims) == (None, [2, 3])
    assert shaped.shape == [2, 3]
    assert shaped == gs.MultiBinary([2, 3])
    with pytest.raises(TypeError):
        spaces.MultiBinary()


def test_text_charset() -> None:
    default = spaces.Text(32)
    assert default.charset == ""
    assert default == gs.Text(32)  # Gymnasium's default charset, unchanged
    finite = spaces.Text(12, 1, charset="ab ")
    assert set(finite.charset) == {"a", "b", " "}
    assert finite.contains("a b") and not finite.contains("a c")
    assert spaces.Text(12, charset=frozenset("xy")).charset in ("xy", "yx")


def test_dict_and_tuple_take_spec_children() -> None:
    box = spaces.Box(0.0, 1.0, (2,))
    nested = spaces.Dict({"obs": box.spec, "id": spaces.Discrete(3)})
    assert isinstance(nested["obs"], spaces.Box) and nested["obs"] == box
    pair = spaces.Tuple([box.spec, spaces.Discrete(2).spec])
    assert pair == gs.Tuple([box, gs.Discrete(2)])
    assert spaces.Dict(nested.spec) == nested
    assert spaces.Tuple(pair.spec) == pair


class _RLMeshSpacesEnv(gym.Env[Any, Any]):
    """A Gymnasium env whose spaces are rlmesh's."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)),
                                              "id": spaces.Discrete(3),
                                              "word": spaces.Text(4, charset="ab")})
        self.action_space = spaces.MultiDiscrete([2, 3])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, False, {}


def test_an_env_with_rlmesh_spaces_passes_check_env() -> None:
    check_env(_RLMeshSpacesEnv(), skip_render_check=True)


def test_space_is_gymnasiums_base() -> None:
    assert spaces.Space is gs.Space
    assert isinstance(gym.make("CartPole-v1").observation_space, spaces.Space)
