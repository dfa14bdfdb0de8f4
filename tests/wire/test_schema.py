"""Space schemas (docs/protocol.md section 6): space -> schema -> wire -> schema -> space."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs

from rlmesh.errors import ProtocolError, UnsupportedSpaceError
from rlmesh.wire.schema import schema_to_space, space_to_schema
from tests.support.spaces import SPACES as SHARED_SPACES
from tests.support.spaces import (
    CustomSpace,
    SpaceFactory,
    assert_space_identical,
    i64,
    inf,
    u8,
    u64,
)
from tests.support.values import assert_same, roundtrip

# -- the spaces -------------------------------------------------------------------------------


def through_the_wire(space: gs.Space[Any]) -> gs.Space[Any]:
    return schema_to_space(roundtrip(space_to_schema(space)))


# The shared catalogue plus bounds, sizes and shapes that only matter to the schema itself.
SPACES: dict[str, SpaceFactory] = {
    **SHARED_SPACES,
    # Box
    "box-f16-max": lambda: gs.Box(np.float16(-65504), np.float16(65504), (2,), np.float16),
    "box-f32-from-f64-bounds": lambda: gs.Box(0.1, 0.7, (3,), np.float32),
    "box-f32-half-bounded": lambda: gs.Box(np.array([0.0, -inf], np.float32),
                                           np.array([inf, 2.0], np.float32), dtype=np.float32),
    "box-f64-inf": lambda: gs.Box(-inf, inf, (2, 3), np.float64),
    "box-f64-3d": lambda: gs.Box(-np.arange(24.0).reshape(2, 3, 4) - 0.125,
                                 np.arange(24.0).reshape(2, 3, 4) + 0.375, dtype=np.float64),
    "box-f32-large-out-of-band": lambda: gs.Box(
        -np.linspace(1, 2, 32 * 32, dtype=np.float32).reshape(32, 32),
        np.linspace(1, 2, 32 * 32, dtype=np.float32).reshape(32, 32), dtype=np.float32),
    "box-i32-from-inf": lambda: gs.Box(-inf, inf, (2,), np.int32),
    "box-i64-mixed": lambda: gs.Box(np.array([i64.min, -(2**53) - 1, 0], np.int64),
                                    np.array([-(2**53), 2**53 + 1, i64.max], np.int64),
                                    dtype=np.int64),
    "box-u8-mixed": lambda: gs.Box(np.array([[0, 10], [20, 254]], np.uint8),
                                   np.array([[1, 200], [20, u8.max]], np.uint8), dtype=np.uint8),
    "box-u64-mixed": lambda: gs.Box(np.array([0, 2**63], np.uint64),
                                    np.array([2**63 + 1, u64.max], np.uint64), dtype=np.uint64),
    # Discrete
    "discrete-one": lambda: gs.Discrete(1),
    "discrete-huge": lambda: gs.Discrete(2**62, start=-(2**61)),
    # MultiDiscrete
    "multidiscrete-start": lambda: gs.MultiDiscrete([3, 4], start=[-1, 10]),
    "multidiscrete-int8-2d": lambda: gs.MultiDiscrete(np.full((2, 3), 3), dtype=np.int8,
                                                      start=np.full((2, 3), -1)),
    # MultiBinary
    "multibinary-3d-array": lambda: gs.MultiBinary(np.array([2, 1, 4])),
    # Text
    "text-fixed-length": lambda: gs.Text(3, min_length=3, charset="10"),
    # containers
    "dict": lambda: gs.Dict({"pos": gs.Box(-1.0, 1.0, (2,)), "id": gs.Discrete(3)}),
    "dict-from-pairs": lambda: gs.Dict([("b", gs.Discrete(3)), ("a", gs.MultiBinary(2))]),
    "tuple": lambda: gs.Tuple((gs.Discrete(2), gs.Box(0, 1, (2,)))),
    # Sequence
    "sequence-of-sequences": lambda: gs.Sequence(gs.Sequence(gs.Discrete(3))),
    # Graph
    "graph-box-box": lambda: gs.Graph(gs.Box(0, 10, (2, 2), np.int32),
                                      gs.Box(-inf, inf, (1,), np.float16)),
}


@pytest.mark.parametrize("make_space", list(SPACES.values()), ids=list(SPACES))
def test_space_round_trip_is_identical(make_space: SpaceFactory) -> None:
    space = make_space()
    rebuilt = through_the_wire(space)
    assert rebuilt == space
    assert space == rebuilt
    assert_space_identical(rebuilt, space)
    # A second trip is stable too.
    assert_space_identical(through_the_wire(rebuilt), space)


# Gymnasium itself cannot sample these (int64 overflow in ``high - low``).
UNSAMPLEABLE = {"box-i64-mixed", "box-u64-mixed"}
SAMPLEABLE = {k: v for k, v in SPACES.items() if k not in UNSAMPLEABLE}


def test_unsampleable_spaces_fail_in_gymnasium_too() -> None:
    for name in UNSAMPLEABLE:
        with pytest.raises(ValueError):
            SPACES[name]().sample()


@pytest.mark.parametrize("make_space", list(SAMPLEABLE.values()), ids=list(SAMPLEABLE))
def test_rebuilt_space_samples_like_the_original(make_space: SpaceFactory
                                                 ) -> None:
    # Same seed, same samples: a client seeding its action space gets what the server would.
    original, rebuilt = make_space(), through_the_wire(make_space())
    for seed in (0, 1, 12345):
        original.seed(seed)
        rebuilt.seed(seed)
        for _ in range(3):
            expected = original.sample()
            sample = rebuilt.sample()
            assert_same(sample, expected)
            assert rebuilt.contains(expected)
            assert original.contains(sample)


def _scribble(node: Any) -> None:
    """Overwrite every array inside a schema."""
    if isinstance(node, np.ndarray):
        node.reshape(-1).view(np.uint8)[...] ^= 0x5A
    elif isinstance(node, dict):
        for v in node.values():
            _scribble(v)
    elif isinstance(node, list):
        for v in node:
            _scribble(v)


@pytest.mark.parametrize("make_space", list(SPACES.values()), ids=list(SPACES))
def test_schema_does_not_alias_the_space(make_space: SpaceFactory) -> None:
    space = make_space()
    schema = space_to_schema(space)
    decoded = roundtrip(schema)
    rebuilt = schema_to_space(decoded)
    snapshot = schema_to_space(roundtrip(space_to_schema(make_space())))
    _scribble(schema)  # the schema is not a view of the server's space...
    _scribble(decoded)  # ...and the client's space is not a view of the received arrays
    assert_space_identical(space, make_space())
    assert_space_identical(rebuilt, snapshot)


# -- the schema maps themselves (the protocol table) ------------------------------------------


def test_schema_maps_follow_the_protocol_table() -> None:
    D2 = {"type": "Discrete", "n": 2, "start": 0, "dtype": "<i8"}
    box = roundtrip(space_to_schema(gs.Box(-1, 1, (2, 3), np.float16)))
    assert box["type"] == "Box"
    assert set(box) == {"type", "low", "high", "bounded_below", "bounded_above"}
    assert box["bounded_below"].dtype == np.bool_ and box["bounded_below"].all()
    assert box["low"].dtype == np.float16 and box["low"].shape == (2, 3)

    assert roundtrip(space_to_schema(gs.Discrete(4, start=-2))) == {
        "type": "Discrete", "n": 4, "start": -2, "dtype": "<i8"}

    md = roundtrip(space_to_schema(gs.MultiDiscrete([[2, 3]], dtype=np.int16, start=[[0, 1]])))
    assert md["type"] == "MultiDiscrete" and set(md) == {"type", "nvec", "start"}
    assert md["nvec"].dtype == np.int16 and md["start"].dtype == np.int16
    assert md["nvec"].shape == (1, 2)

    assert roundtrip(space_to_schema(gs.MultiBinary(3))) == {"type": "MultiBinary", "n": 3}
    assert roundtrip(space_to_schema(gs.MultiBinary([2, 3]))) == {"type": "MultiBinary",
                                                            "n": [2, 3]}
    assert roundtrip(space_to_schema(gs.Text(5, min_length=1, charset="cab"))) == {
        "type": "Text", "min_length": 1, "max_length": 5, "charset": "cab"}

    d = roundtrip(space_to_schema(gs.Dict({"b": gs.Discrete(2), "a": gs.Discrete(3)},
                                     sort_keys=False)))
    assert d == {"type": "Dict", "spaces": [["b", {"type": "Discrete", "n": 2, "start": 0,
                                                        "dtype": "<i8"}],
                                            ["a", {"type": "Discrete", "n": 3, "start": 0,
                                                   "dtype": "<i8"}]]}

    t = roundtrip(space_to_schema(gs.Tuple((gs.Discrete(2),))))
    assert t == {"type": "Tuple", "spaces": [D2]}

    s = roundtrip(space_to_schema(gs.Sequence(gs.Discrete(2), stack=True)))
    assert s == {"type": "Sequence", "space": D2,
                 "stack": True}

    g = roundtrip(space_to_schema(gs.Graph(gs.Discrete(2), None)))
    assert g == {"type": "Graph", "node_space": D2,
                 "edge_space": None}

    o = roundtrip(space_to_schema(gs.OneOf((gs.Discrete(2),))))
    assert o == {"type": "OneOf", "spaces": [D2]}


def test_schema_to_space_returns_fresh_unseeded_spaces() -> None:
    schema = roundtrip(space_to_schema(gs.Discrete(1000)))
    a, b = schema_to_space(schema), schema_to_space(schema)
    assert a is not b
    a.seed(1)
    b.seed(1)
    assert a.sample() == b.sample()


# -- unsupported spaces -----------------------------------------------------------------------


UNSUPPORTED: dict[str, SpaceFactory] = {
    "custom": CustomSpace,
    "plain-space": lambda: gs.Space((), np.int64),
    "in-dict": lambda: gs.Dict({"ok": gs.Discrete(2), "bad": CustomSpace()}),
    "in-tuple": lambda: gs.Tuple((gs.Discrete(2), gs.Tuple((CustomSpace(),)))),
    "in-sequence": lambda: gs.Sequence(CustomSpace()),
    "in-oneof": lambda: gs.OneOf((gs.Discrete(2), CustomSpace())),
}


@pytest.mark.parametrize("make_space", list(UNSUPPORTED.values()), ids=list(UNSUPPORTED))
def test_unsupported_space_raises(make_space: SpaceFactory) -> None:
    with pytest.raises(UnsupportedSpaceError):
        space_to_schema(make_space())


# -- malformed schemas ------------------------------------------------------------------------


def _schema(space: gs.Space[Any]) -> dict[str, Any]:
    return dict(roundtrip(space_to_schema(space)))


def _deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "Discrete", "n": 2, "start": 0}
    for _ in range(depth):
        schema = {"type": "Tuple", "spaces": [schema]}
    return schema


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()
_BOX = _schema(gs.Box(-1, 1, (2,)))
_DISCRETE = {"type": "Discrete", "n": 3, "start": 0}
_MD = _schema(gs.MultiDiscrete([2, 3]))

MALFORMED: dict[str, Any] = {
    "none": None,
    "list": [],
    "string": "Box",
    "int": 5,
    "empty-map": {},
    "unknown-type": {"type": "Hyperbox"},
    "type-not-str": {"type": 1},
    "type-none": {"type": None},
    "box-missing-low": _with(_BOX, low=_DROP),
    "box-missing-high": _with(_BOX, high=_DROP),
    "box-low-list": _with(_BOX, low=[-1.0, -1.0]),
    "box-low-str": _with(_BOX, low="low"),
    "box-shape-mismatch": _with(_BOX, high=np.ones(3, np.float32)),
    "box-low-above-high": _with(_BOX, low=np.full(2, 2.0, np.float32)),
    "box-string-dtype": _with(_BOX, low=np.array(["a", "b"]), high=np.array(["c", "d"])),
    "box-complex-dtype": _with(_BOX, low=np.zeros(2, np.complex64),
                               high=np.ones(2, np.complex64)),
    "discrete-missing-n": {"type": "Discrete", "start": 0},
    "discrete-missing-start": {"type": "Discrete", "n": 3},
    "discrete-zero": _with(_DISCRETE, n=0),
    "discrete-negative": _with(_DISCRETE, n=-3),
    "discrete-n-none": _with(_DISCRETE, n=None),
    "discrete-n-str": _with(_DISCRETE, n="three"),
    "discrete-n-list": _with(_DISCRETE, n=[3]),
    "discrete-start-str": _with(_DISCRETE, start="x"),
    "multidiscrete-missing-nvec": _with(_MD, nvec=_DROP),
    "multidiscrete-nvec-list": _with(_MD, nvec=[2, 3]),
    "multidiscrete-nvec-zero": _with(_MD, nvec=np.array([0, 3])),
    "multidiscrete-start-shape": _with(_MD, start=np.zeros(5, np.int64)),
    "multidiscrete-start-str": _with(_MD, start="s"),
    "multibinary-missing-n": {"type": "MultiBinary"},
    "multibinary-zero": {"type": "MultiBinary", "n": 0},
    "multibinary-negative": {"type": "MultiBinary", "n": -2},
    "multibinary-str": {"type": "MultiBinary", "n": "3"},
    "multibinary-none": {"type": "MultiBinary", "n": None},
    "multibinary-zero-dim": {"type": "MultiBinary", "n": [2, 0]},
    "multibinary-nested-list": {"type": "MultiBinary", "n": [[2]]},
    "text-missing-charset": {"type": "Text", "min_length": 1, "max_length": 3},
    "text-min-above-max": {"type": "Text", "min_length": 5, "max_length": 3, "charset": "ab"},
    "text-negative-max": {"type": "Text", "min_length": 0, "max_length": -1, "charset": "ab"},
    "text-length-str": {"type": "Text", "min_length": "a", "max_length": 3, "charset": "ab"},
    "dict-missing-spaces": {"type": "Dict"},
    "dict-spaces-int": {"type": "Dict", "spaces": 5},
    "dict-spaces-none": {"type": "Dict", "spaces": None},
    "dict-pair-too-short": {"type": "Dict", "spaces": [["a"]]},
    "dict-pair-too-long": {"type": "Dict", "spaces": [["a", _DISCRETE, 1]]},
    "dict-unhashable-key": {"type": "Dict", "spaces": [[["a"], _DISCRETE]]},
    "dict-bad-child": {"type": "Dict", "spaces": [["a", {"type": "Nope"}]]},
    "dict-child-not-map": {"type": "Dict", "spaces": [["a", 3]]},
    "tuple-missing-spaces": {"type": "Tuple"},
    "tuple-spaces-none": {"type": "Tuple", "spaces": None},
    "tuple-bad-child": {"type": "Tuple", "spaces": [_DISCRETE, 7]},
    "sequence-missing-space": {"type": "Sequence", "stack": False},
    "sequence-missing-stack": {"type": "Sequence", "space": _DISCRETE},
    "sequence-bad-child": {"type": "Sequence", "space": {}, "stack": False},
    "graph-missing-node": {"type": "Graph", "edge_space": None},
    "graph-missing-edge": {"type": "Graph", "node_space": _DISCRETE},
    "graph-node-none": {"type": "Graph", "node_space": None, "edge_space": None},
    "oneof-missing-spaces": {"type": "OneOf"},
    "oneof-empty": {"type": "OneOf", "spaces": []},
    "oneof-bad-child": {"type": "OneOf", "spaces": [None]},
    "nested-too-deep": _deep_schema(200),
}


@pytest.mark.parametrize("schema", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_schema_raises_protocol_error(schema: Any) -> None:
    with pytest.raises(ProtocolError):
        schema_to_space(schema)


@pytest.mark.parametrize("depth", [40, 300, 500], ids=lambda d: f"depth-{d}")
def test_too_deep_schema_from_the_wire_raises_protocol_error(depth: int) -> None:
    schema = roundtrip(_deep_schema(depth))  # the codec carries it, so a server can send it
    with pytest.raises(ProtocolError):
        schema_to_space(schema)


def test_moderately_nested_schema_is_accepted() -> None:
    space: gs.Space[Any] = gs.Discrete(2)
    for _ in range(20):
        space = gs.Tuple((space,))
    assert_space_identical(through_the_wire(space), space)
