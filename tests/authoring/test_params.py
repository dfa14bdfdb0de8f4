"""Param, ParamSpec and Vector: the light, strict coercion the reference docs describe."""

from __future__ import annotations

import math

import pytest

import rlmesh
from rlmesh.params import (
    PARAM_METADATA_KEY,
    MissingParamError,
    Param,
    ParamError,
    ParamSpec,
    UnknownParamError,
    Vector,
)


def test_the_params_module_and_the_top_level_share_the_classes() -> None:
    assert rlmesh.Param is Param and rlmesh.ParamSpec is ParamSpec and rlmesh.Vector is Vector
    assert rlmesh.params.ParamError is rlmesh.errors.ParamError
    assert isinstance(PARAM_METADATA_KEY, str) and PARAM_METADATA_KEY


def test_param_errors_are_value_errors_in_the_rlmesh_tree() -> None:
    for cls in (ParamError, MissingParamError, UnknownParamError):
        assert issubclass(cls, ValueError) and issubclass(cls, rlmesh.RLMeshError)
    assert issubclass(MissingParamError, ParamError) and issubclass(UnknownParamError, ParamError)
    missing = MissingParamError("task_id")
    assert missing.name == "task_id" and "task_id" in str(missing)
    unknown = UnknownParamError(["robtos", "b"])
    assert unknown.names == ["b", "robtos"] and "robtos" in str(unknown)
    assert str(UnknownParamError("x", "custom")) == "custom"


@pytest.mark.parametrize(("kind", "value", "expected"), [
    (int, 3, 3), ("int", 4.0, 4), (float, 2, 2.0), ("float", 0.5, 0.5), (str, "a", "a"),
    (bool, False, False), ("bool", True, True),
])
def test_values_that_fit_are_coerced_lightly(kind: object, value: object,
                                             expected: object) -> None:
    out = Param("x", kind).coerce(value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(("kind", "value"), [
    (int, True), (float, False), (int, 2.5), (float, math.nan), (float, math.inf),
    (int, "3"), (str, 3), (bool, 1), ("int", math.inf),
])
def test_values_that_do_not_fit_are_refused(kind: object, value: object) -> None:
    with pytest.raises(ParamError, match="'x'"):
        Param("x", kind).coerce(value)


def test_choices_bound_the_domain() -> None:
    suite = Param("suite", str, choices=("libero_10", "libero_90"))
    assert suite.coerce("libero_90") == "libero_90"
    with pytest.raises(ParamError, match="libero_10"):
        suite.coerce("libero_11")
    enum = Param("mode", "enum", choices=("delta", 3))
    assert enum.coerce(3) == 3  # an enum is its choices, of any type


def test_bad_declarations_fail_when_declared() -> None:
    with pytest.raises(ValueError, match="needs choices"):
        Param("mode", "enum")
    with pytest.raises(ValueError, match="integer"):
        Param("x", "integer")
    with pytest.raises(ValueError, match="identifier"):
        Param("not a name")
    with pytest.raises(ValueError, match="choice"):
        Param("n", int, choices=(1, "two"))
    with pytest.raises(ValueError, match="more than once"):
        ParamSpec(Param("a"), Param("a"))
    with pytest.raises(ValueError, match="extra"):
        ParamSpec(extra="allow")
    with pytest.raises(TypeError):
        ParamSpec("a")  # type: ignore[arg-type]


def test_vector_canonicalises_lists_and_checks_length_finiteness_and_norm() -> None:
    offset = Param("offset", Vector(3))
    assert offset.coerce([1, 2.5, 0]) == (1.0, 2.5, 0.0)
    for bad in ([1.0, 2.0], [1.0, math.nan, 0.0], [True, 0.0, 0.0], "abc", 1.0):
        with pytest.raises(ParamError):
            offset.coerce(bad)
    quat = Param("quat", Vector(4, unit=True), choices=([0, 0, 0, 1], (1, 0, 0, 0)))
    assert quat.coerce([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ParamError, match="one of"):
        quat.coerce([0.0, 1.0, 0.0, 0.0])  # unit, but not a choice
    with pytest.raises(ParamError, match="unit norm"):
        Param("q", Vector(2, unit=True)).coerce([1.0, 1.0])
    with pytest.raises(ValueError):
        Vector(0)


def test_a_spec_serialises_its_declarations() -> None:
    spec = ParamSpec(Param("suite", str, choices=("a", "b"), group="task"),
                     Param("offset", Vector(2, unit=True), description="dir"),
                     extra="passthrough")
    assert spec.names == ["suite", "offset"] and "suite" in spec and len(spec) == 2
    assert spec.to_dict() == {"extra": "passthrough", "params": [
        {"name": "suite", "type": "str", "choices": ["a", "b"], "description": "",
         "group": "task"},
        {"name": "offset", "type": {"vector": {"dim": 2, "unit": True}}, "choices": None,
         "description": "dir", "group": None}]}
    assert ParamSpec(Param("suite", str, choices=("a", "b"), group="task"),
                     Param("offset", Vector(2, unit=True), description="dir"),
                     extra="passthrough") == spec
