"""ModelSpec and EnvTags as documents: round trips through dicts, JSON and contract metadata,
what a reader refuses (unknown keys, non-finite numbers, host code) and what it skips
(``x-``/``ext-`` extension fields)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import rlmesh.adapters as adapt
from tests.adapters.arm import arm_tags, reverse


def rich_spec() -> adapt.ModelSpec:
    """A spec exercising every serializable leaf and most fields."""
    named = adapt.CustomEncoding("rot6d", from_base="tests.adapters.arm:reverse",
                                 to_base="tests.adapters.arm:reverse", name="rev6d")
    return adapt.ModelSpec(
        input={
            "state": adapt.Concat(
                adapt.EEF_POS,
                adapt.State(adapt.EEF_ROT, encoding=("rot6d", "quat_xyzw")),
                adapt.State(adapt.GRIPPER_POS, range=(-1.0, 1.0), scale=2.0, offset=0.5),
                adapt.State(adapt.EEF_POS_2, dim=3, optional=True, fill=0.25,
                            frame="robot_base"),
                pad_to=20, dtype="float64", reshape=(4, 5), container="list"),
            "one": adapt.State(adapt.JOINT_POS, index=2),
            "rot": adapt.State(adapt.EEF_ROT, encoding=named),
            "texts": (adapt.Text(), adapt.Text("text/goal", container="list", fill="go")),
            "extra": adapt.Custom(entrypoint="tests.adapters.arm:gripper_twice"),
        },
        output=adapt.Action(
            adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, scale=0.5, reference="target"),
            adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding=named),
            adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, binary=True, invert=True,
                           threshold=0.5, range=(0.0, 1.0))),
    )


def test_model_spec_round_trips_through_a_dict() -> None:
    spec = rich_spec()
    again = adapt.ModelSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_model_spec_round_trips_through_json() -> None:
    spec = rich_spec()
    text = spec.to_json()
    assert json.loads(text) == spec.to_dict()
    assert adapt.ModelSpec.from_json(text) == spec
    assert adapt.ModelSpec.from_json(text.encode()) == spec


def test_model_spec_round_trips_through_metadata() -> None:
    spec = rich_spec()
    metadata = spec.to_metadata()
    assert list(metadata) == [adapt.MODEL_METADATA_KEY]
    assert adapt.ModelSpec.from_metadata(json.loads(json.dumps(metadata))) == spec


def test_a_bare_leaf_spec_round_trips() -> None:
    spec = adapt.ModelSpec(adapt.State(adapt.EEF_POS),
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    assert adapt.ModelSpec.from_json(spec.to_json()) == spec


def test_the_sparse_document_omits_defaults() -> None:
    spec = adapt.ModelSpec({"s": adapt.State(adapt.EEF_POS)},
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    assert spec.to_dict() == {
        "input": {"s": {"type": "state", "components": [{"role": "proprio/eef_pos"}]}},
        "output": {"components": [{"role": "action/gripper", "dim": 1}]}}


def test_env_tags_round_trip_through_json_and_metadata() -> None:
    tags = adapt.EnvTags(
        {"flat": adapt.Split(adapt.Field(adapt.EEF_POS, dim=3, frame="world"),
                             adapt.Field(adapt.EEF_ROT, dim=4, encoding=("quat_xyzw", "rot6d")),
                             adapt.Field(dim=2)),
         "pair": (adapt.StateTag(adapt.GRIPPER_POS, range=(0.0, 0.08)),
                  adapt.TextTag(adapt.INSTRUCTION))},
        adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, frame="robot_base"),
                     adapt.Actuator(dim=2, fill=-1.0),
                     adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, optional=True, fill=1.0,
                                    clip=True, range=(-1.0, 1.0)),
                     clip=(-2.0, 2.0)))
    assert adapt.EnvTags.from_json(tags.to_json()) == tags
    assert adapt.EnvTags.from_metadata(json.loads(json.dumps(tags.to_metadata()))) == tags


# --- refusals ---------------------------------------------------------------------------------

def spec_doc() -> dict[str, Any]:
    return adapt.ModelSpec({"s": adapt.State(adapt.EEF_POS), "t": adapt.Text()},
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))).to_dict()


@pytest.mark.parametrize("where", ["leaf", "component", "actuator", "layout"])
def test_unknown_keys_are_refused_in_a_model_spec(where: str) -> None:
    doc = spec_doc()
    target = {"leaf": doc["input"]["t"], "component": doc["input"]["s"]["components"][0],
              "actuator": doc["output"]["components"][0], "layout": doc["output"]}[where]
    target["colour"] = "red"
    with pytest.raises(adapt.AdapterSpecError, match="colour"):
        adapt.ModelSpec.from_dict(doc)


@pytest.mark.parametrize("where", ["leaf", "component", "actuator", "layout"])
def test_extension_keys_are_skipped_in_a_model_spec(where: str) -> None:
    doc = spec_doc()
    target = {"leaf": doc["input"]["t"], "component": doc["input"]["s"]["components"][0],
              "actuator": doc["output"]["components"][0], "layout": doc["output"]}[where]
    target["x-note"] = {"anything": [1, 2]}
    target["ext-vendor"] = "acme"
    assert adapt.ModelSpec.from_dict(doc) == adapt.ModelSpec.from_dict(spec_doc())


def tags_doc() -> dict[str, Any]:
    return adapt.EnvTags(
        {"s": adapt.StateTag(adapt.EEF_POS),
         "f": adapt.Split(adapt.Field(adapt.GRIPPER_POS, dim=1), adapt.Field(dim=1))},
        adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))).to_dict()


def tags_target(doc: dict[str, Any], where: str) -> dict[str, Any]:
    return {"leaf": doc["observation"]["s"], "field": doc["observation"]["f"]["fields"][0],
            "actuator": doc["action"]["components"][0], "layout": doc["action"]}[where]


@pytest.mark.parametrize("where", ["leaf", "field", "actuator", "layout"])
def test_unknown_keys_are_refused_in_env_tags(where: str) -> None:
    doc = tags_doc()
    tags_target(doc, where)["colour"] = "red"
    with pytest.raises(adapt.AdapterSpecError, match="colour"):
        adapt.EnvTags.from_dict(doc)


@pytest.mark.parametrize("where", ["leaf", "field", "actuator", "layout"])
def test_extension_keys_are_skipped_in_env_tags(where: str) -> None:
    doc = tags_doc()
    tags_target(doc, where)["x-calibrated"] = True
    assert adapt.EnvTags.from_dict(doc) == adapt.EnvTags.from_dict(tags_doc())


@pytest.mark.parametrize("cls", [adapt.ModelSpec, adapt.EnvTags])
def test_an_extra_top_level_key_is_refused(cls: Any) -> None:
    doc = spec_doc() if cls is adapt.ModelSpec else tags_doc()
    doc["version"] = 2
    with pytest.raises(adapt.AdapterSpecError):
        cls.from_dict(doc)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("cls", [adapt.ModelSpec, adapt.EnvTags])
def test_non_finite_numbers_are_refused_when_read(cls: Any, constant: str) -> None:
    doc = spec_doc() if cls is adapt.ModelSpec else tags_doc()
    doc[("output" if cls is adapt.ModelSpec else "action")]["components"][0]["range"] = [0, 1]
    text = json.dumps(doc).replace("[0, 1]", f"[0, {constant}]")
    with pytest.raises(adapt.AdapterSpecError):
        cls.from_json(text)


@pytest.mark.parametrize("build", [
    lambda: adapt.State(adapt.EEF_POS, scale=float("nan")),
    lambda: adapt.State(adapt.EEF_POS, range=(0.0, float("inf"))),
    lambda: adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, threshold=float("inf")),
    lambda: adapt.StateTag(adapt.EEF_POS, range=(float("-inf"), 0.0)),
])
def test_non_finite_numbers_are_refused_when_built(build: Any) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        build()


def test_invalid_json_is_a_spec_error() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="JSON"):
        adapt.ModelSpec.from_json("{not json")


def test_a_callable_custom_input_cannot_be_serialized() -> None:
    spec = adapt.ModelSpec({"c": adapt.Custom(transform=len)},
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    with pytest.raises(adapt.AdapterSpecError, match=r"c.*entrypoint"):
        spec.to_json()


@pytest.mark.parametrize("side", ["input", "output"])
def test_a_callable_custom_encoding_cannot_be_serialized(side: str) -> None:
    encoding = adapt.CustomEncoding("rot6d", from_base=reverse, to_base=reverse)
    if side == "input":
        spec = adapt.ModelSpec({"r": adapt.State(adapt.EEF_ROT, encoding=encoding)},
                               adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    else:
        spec = adapt.ModelSpec(adapt.State(adapt.EEF_POS), adapt.Action(
            adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding=encoding)))
    with pytest.raises(adapt.AdapterSpecError, match="callable"):
        spec.to_dict()


def test_a_host_code_custom_cannot_be_read_from_a_document() -> None:
    doc = spec_doc()
    doc["input"]["t"] = {"type": "custom", "entrypoint": "host:thing"}
    with pytest.raises(adapt.AdapterSpecError, match="entrypoint"):
        adapt.ModelSpec.from_dict(doc)


@pytest.mark.parametrize("bad", [{"input": {}, "output": {"components": [{"role": "a/b"}]}},
                                 {"input": {"s": {"type": "state", "components": []}},
                                  "output": {"components": []}},
                                 {"input": {"s": {"type": "hologram"}},
                                  "output": {"components": []}},
                                 {"input": 3, "output": {"components": []}}])
def test_malformed_model_spec_documents(bad: dict[str, Any]) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.ModelSpec.from_dict(bad)


# --- metadata keys ----------------------------------------------------------------------------

def test_metadata_keys_are_side_specific() -> None:
    spec_meta = adapt.ModelSpec.from_dict(spec_doc()).to_metadata()
    tags_meta = arm_tags().to_metadata()
    assert adapt.ENV_METADATA_KEY != adapt.MODEL_METADATA_KEY
    assert adapt.ModelSpec.from_metadata(tags_meta) is None
    assert adapt.EnvTags.from_metadata(spec_meta) is None
    both = {**spec_meta, **tags_meta}
    assert adapt.ModelSpec.from_metadata(both) == adapt.ModelSpec.from_dict(spec_doc())
    assert adapt.EnvTags.from_metadata(both) == arm_tags()


def test_model_spec_refuses_another_format_version() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="v2"):
        adapt.ModelSpec.from_metadata({"rlmesh.adapters.v2.model_spec": spec_doc()})


def test_model_spec_construction_checks_its_tree() -> None:
    with pytest.raises(adapt.AdapterSpecError, match=r"input\['a'\]"):
        adapt.ModelSpec({"a": 3}, adapt.Action())  # type: ignore[dict-item]
    with pytest.raises(adapt.AdapterSpecError, match="Action"):
        adapt.ModelSpec(adapt.State(adapt.EEF_POS), {"components": []})  # type: ignore[arg-type]
