"""Every kind of Gymnasium space with awkward bounds, dtypes and nestings, compared strictly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from tests.support.values import assert_same

SpaceFactory = Callable[[], gs.Space[Any]]


def assert_space_identical(actual: gs.Space[Any], expected: gs.Space[Any],
                           path: str = "space") -> None:
    """``==`` plus everything ``==`` glosses over: exact bounds, dtypes, key and charset order."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    assert actual == expected, f"{path}: {actual} != {expected}"
    assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
    if isinstance(expected, gs.Box):
        for bound in ("low", "high"):
            a, e = getattr(actual, bound), getattr(expected, bound)
            assert a.dtype == e.dtype, f"{path}.{bound} dtype {a.dtype} != {e.dtype}"
            assert a.shape == e.shape, f"{path}.{bound} shape {a.shape} != {e.shape}"
            assert a.tobytes() == e.tobytes(), f"{path}.{bound}: {a!r} != {e!r} (bit-exact)"
    elif isinstance(expected, gs.Discrete):
        assert int(actual.n) == int(expected.n)
        assert int(actual.start) == int(expected.start)
    elif isinstance(expected, gs.MultiDiscrete):
        assert_same(actual.nvec, expected.nvec, f"{path}.nvec")
        assert_same(actual.start, expected.start, f"{path}.start")
    elif isinstance(expected, gs.MultiBinary):
        assert np.array_equal(np.asarray(actual.n), np.asarray(expected.n))
    elif isinstance(expected, gs.Text):
        assert actual.min_length == expected.min_length
        assert actual.max_length == expected.max_length
        assert actual._char_list == expected._char_list, f"{path}: charset order differs"
    elif isinstance(expected, gs.Dict):
        assert list(actual.spaces) == list(expected.spaces), (
            f"{path}: key order {list(actual.spaces)} != {list(expected.spaces)}")
        for key in expected.spaces:
            assert_space_identical(actual.spaces[key], expected.spaces[key], f"{path}[{key!r}]")
    elif isinstance(expected, (gs.Tuple, gs.OneOf)):
        assert len(actual.spaces) == len(expected.spaces)
        for i, (a, e) in enumerate(zip(actual.spaces, expected.spaces, strict=True)):
            assert_space_identical(a, e, f"{path}[{i}]")
    elif isinstance(expected, gs.Sequence):
        assert actual.stack == expected.stack
        assert_space_identical(actual.feature_space, expected.feature_space, f"{path}.feature")
    elif isinstance(expected, gs.Graph):
        assert_space_identical(actual.node_space, expected.node_space, f"{path}.node_space")
        if expected.edge_space is None:
            assert actual.edge_space is None
        else:
            assert_space_identical(actual.edge_space, expected.edge_space, f"{path}.edge_space")


class CustomSpace(gs.Space[int]):
    """A Space subclass rlmesh has no schema for."""

    def __init__(self) -> None:
        super().__init__((), np.int64)

    def sample(self, mask: Any = None, probability: Any = None) -> int:
        return 0

    def contains(self, x: Any) -> bool:
        return x == 0


i8, i16, i32, i64 = (np.iinfo(t) for t in (np.int8, np.int16, np.int32, np.int64))
u8, u64 = np.iinfo(np.uint8), np.iinfo(np.uint64)
inf = np.inf

# Every kind of Gymnasium space, with awkward bounds, dtypes, orders and nestings. Modules that
# test spaces parametrize over these and add their own specials (``{**SPACES, ...}``); the
# names are the test ids.
SPACES: dict[str, SpaceFactory] = {
    # Box
    "box-f16-inf": lambda: gs.Box(-inf, inf, (3,), np.float16),
    "box-f16-fractions": lambda: gs.Box(np.float16(-0.1), np.float16(1 / 3), (2, 2),
                                        np.float16),
    "box-f32-default": lambda: gs.Box(-1.0, 1.0, (4,)),
    "box-f32-mixed": lambda: gs.Box(np.array([-1.0, -inf, 0.0, -3.5], np.float32),
                                    np.array([1.0, 5.0, inf, 1e-30], np.float32),
                                    dtype=np.float32),
    "box-f64-exact": lambda: gs.Box(np.array([0.1, 1 / 3, -np.pi, 5e-324]),
                                    np.array([0.2, 2 / 3, np.e, 1.7976931348623157e308]),
                                    dtype=np.float64),
    "box-f32-scalar-shape": lambda: gs.Box(-2.5, 2.5, (), np.float32),
    "box-i8-extremes": lambda: gs.Box(int(i8.min), int(i8.max), (2, 2), np.int8),
    "box-i16-mixed": lambda: gs.Box(np.array([i16.min, -5, 0], np.int16),
                                    np.array([-1, 7, i16.max], np.int16), dtype=np.int16),
    "box-i32-extremes": lambda: gs.Box(int(i32.min), int(i32.max), (3,), np.int32),
    "box-i64-extremes": lambda: gs.Box(int(i64.min), int(i64.max), (3,), np.int64),
    "box-u8-image": lambda: gs.Box(0, 255, (4, 5, 3), np.uint8),
    "box-u64-extremes": lambda: gs.Box(0, int(u64.max), (2,), np.uint64),
    "box-bool": lambda: gs.Box(np.zeros(3, np.bool_), np.array([True, True, False]),
                               dtype=np.bool_),
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
    "multidiscrete-int32": lambda: gs.MultiDiscrete([5, 5], dtype=np.int32, start=[1, -2]),
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
    # everything at once
    "kitchen-sink": lambda: gs.Dict({
        "obs": gs.Tuple((gs.Box(-inf, inf, (3,), np.float16), gs.Discrete(2))),
        "seq": gs.Sequence(gs.OneOf((gs.Discrete(2), gs.Text(3)))),
        "graph": gs.Graph(gs.Box(0, 1, (2,)), gs.Discrete(3)),
        "choice": gs.OneOf((gs.Sequence(gs.Box(0, 1, (1,)), stack=True),
                            gs.MultiBinary([2, 2]))),
    }),
}
