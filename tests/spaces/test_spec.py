"""SpaceSpec and the conversions (docs/api/contracts.md "SpaceSpec", docs/gymnasium.md).

A spec is the wire-safe description of a space: ``kind``, ``shape`` (a list), ``dtype`` (a
name); ``space_from_spec`` gives back the space, ``to_gymnasium_space`` a Gymnasium one, and
``from_gymnasium_space`` an rlmesh one, each equal to the original.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs

import rlmesh
from rlmesh import spaces
from rlmesh.spacetypes.spec import space_spec
from tests.support.spaces import SPACES

RLMESH_CLASSES = (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete,
                  spaces.Text, spaces.Dict, spaces.Tuple)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("name", SPACES)
def test_every_served_space_round_trips_through_its_spec(name: str) -> None:
    original = SPACES[name]()
    spec = space_spec(original)
    converted = spaces.from_gymnasium_space(original)
    if isinstance(converted, RLMESH_CLASSES):
        assert converted.spec == spec
    assert spaces.space_from_spec(spec) == original
    assert spaces.to_gymnasium_space(spec) == original
    assert spaces.to_gymnasium_space(spaces.from_gymnasium_space(original)) == original
    assert pickle.loads(pickle.dumps(spec)) == spec
    json.dumps(spec._to_dict())  # built-in values only


@pytest.mark.parametrize("name", SPACES)
def test_to_gymnasium_space_gives_gymnasiums_own_classes(name: str) -> None:
    plain = spaces.to_gymnasium_space(SPACES[name]())
    assert type(plain).__module__.startswith("gymnasium.")


def test_spec_fields() -> None:
    spec = spaces.Discrete(3, start=1).spec
    assert (spec.kind, spec.shape, spec.dtype) == ("discrete", [], "int64")
    assert spec._details() == {"n": 3, "start": 1}
    assert spec._to_dict()["kind"] == "discrete"
    box = spaces.Box(-1.0, 1.0, shape=[2, 3], dtype="float32").spec
    assert (box.kind, box.shape, box.dtype) == ("box", [2, 3], "float32")
    assert box._details() == {"bounds_kind": "uniform", "low": -1.0, "high": 1.0}
    assert not hasattr(spec, "to_dict") and not hasattr(spec, "details")


def test_spec_is_immutable_and_hashable() -> None:
    spec = spaces.Discrete(3).spec
    with pytest.raises(AttributeError):
        spec.kind = "box"  # type: ignore[misc]
    spec._details()["n"] = 99
    assert spec._details()["n"] == 3
    assert {spec, spaces.Discrete(3).spec} == {spec}
    assert spec != spaces.Discrete(4).spec


def test_spec_to_space_and_to_gym_space() -> None:
    spec = spaces.MultiBinary([2, 3]).spec
    assert isinstance(spec.to_space(), spaces.MultiBinary)
    assert type(spec.to_gym_space()) is gs.MultiBinary
    assert spaces.space_from_spec(spec).dims == [2, 3]
    with pytest.raises(TypeError):
        spaces.space_from_spec(gs.Discrete(2))  # type: ignore[arg-type]


def test_nested_spec_keeps_children_and_key_order() -> None:
    source = spaces.Dict({"obs": spaces.Box(-1.0, 1.0, shape=[2]), "action": spaces.Discrete(2)},
                         sort_keys=False)
    rebuilt = spaces.space_from_spec(source.spec)
    assert isinstance(rebuilt, spaces.Dict) and list(rebuilt.spaces) == ["obs", "action"]
    assert isinstance(rebuilt["obs"], spaces.Box) and rebuilt["obs"].shape == [2]
    assert rebuilt == source


def test_int64_bounds_survive_exactly() -> None:
    top = 2**63 - 1
    source = gs.Box(low=np.array([0, 100]), high=np.array([10, top]), dtype=np.int64)
    restored = spaces.to_gymnasium_space(spaces.from_gymnasium_space(source))
    assert isinstance(restored, gs.Box)
    assert int(restored.high.max()) == top
    np.testing.assert_array_equal(restored.low, source.low)


def test_text_default_charset_is_named_empty_and_custom_kept() -> None:
    assert spaces.from_gymnasium_space(gs.Text(32)).spec._details()["charset"] == ""
    custom = spaces.from_gymnasium_space(gs.Text(12, charset="ab "))
    assert set(custom.spec._details()["charset"]) == set("ab ")
    assert spaces.to_gymnasium_space(custom).contains("a b")


def test_from_gymnasium_space_refuses_non_spaces() -> None:
    with pytest.raises(TypeError):
        spaces.from_gymnasium_space("Box")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spaces.to_gymnasium_space(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("face", ["numpy", "torch", "jax"])
def test_backend_faces_export_space_from_spec(face: str) -> None:
    if face != "numpy":
        pytest.importorskip(face)
    module: Any = __import__(f"rlmesh.{face}", fromlist=["space_from_spec"])
    space = module.space_from_spec(spaces.Box(-1.0, 1.0, shape=[2], dtype="float32").spec)
    sample = space.sample()
    assert isinstance(sample, np.ndarray) and sample.shape == (2,)
    assert space.contains(np.asarray([0.25, -0.25], dtype=np.float32))


def test_specs_module_names_the_same_class() -> None:
    assert rlmesh.specs.SpaceSpec is spaces.SpaceSpec


def test_space_from_spec_takes_the_reference_bridge_keyword() -> None:
    import rlmesh.numpy

    box = spaces.Box(-1.0, 1.0, (3,), np.float32)
    for bridge in (None, "numpy", object()):
        rebuilt = spaces.space_from_spec(box.spec, bridge=bridge)
        assert rebuilt == box and isinstance(rebuilt.sample(), np.ndarray)
    assert rlmesh.numpy.space_from_spec(box.spec) == box
    with pytest.raises(TypeError, match="SpaceSpec"):
        spaces.space_from_spec(box, bridge=None)  # type: ignore[arg-type]
