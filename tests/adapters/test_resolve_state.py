"""Numeric inputs (State, Concat) resolved against real Gymnasium spaces: every documented
rule of the state side, checked on the values the adapter hands the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import rlmesh.adapters as adapt
from rlmesh.adapters.rotations import ENCODINGS, SOURCE_ENCODINGS
from tests.adapters.arm import (
    INF,
    FlatArmEnv,
    arm_obs,
    arm_observation_space,
    arm_tags,
    encode,
    flat_tags,
    resolve_arm,
    same_rotation_value,
)


def payload(input: Any, obs: Any = None, **kwargs: Any) -> Any:
    adapter = resolve_arm(input, **kwargs)
    return adapter.transform_obs(arm_obs() if obs is None else obs)


# --- pass-through, order, parts ---------------------------------------------------------------

def test_single_state_passes_the_leaf_through_as_float32() -> None:
    out = payload(adapt.State(adapt.EEF_POS))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3], rtol=1e-6)


def test_concat_keeps_the_order_the_model_wrote() -> None:
    forward = payload(adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS))
    backward = payload(adapt.Concat(adapt.GRIPPER_POS, adapt.EEF_POS))
    np.testing.assert_allclose(forward, [0.1, -0.2, 0.3, 0.04], rtol=1e-6)
    np.testing.assert_allclose(backward, [0.04, 0.1, -0.2, 0.3], rtol=1e-6)


def test_bare_role_part_is_a_role_only_state() -> None:
    bare = adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS)
    explicit = adapt.Concat(adapt.State(adapt.EEF_POS), adapt.State(adapt.GRIPPER_POS))
    assert bare == explicit
    np.testing.assert_array_equal(payload(bare), payload(explicit))


def test_a_one_part_concat_equals_that_state() -> None:
    assert adapt.Concat(adapt.State(adapt.EEF_POS, dim=2)) == adapt.State(adapt.EEF_POS, dim=2)


def test_state_part_with_container_fields_is_refused() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="proprio/eef_pos"):
        adapt.Concat(adapt.State(adapt.EEF_POS, pad_to=8))


def test_concat_needs_a_part_and_only_roles_or_states() -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Concat()
    with pytest.raises(adapt.AdapterSpecError, match="int"):
        adapt.Concat(adapt.EEF_POS, 3)  # type: ignore[arg-type]


# --- dim / index ------------------------------------------------------------------------------

def test_dim_keeps_the_leading_elements() -> None:
    np.testing.assert_allclose(payload(adapt.State(adapt.JOINT_POS, dim=3)), [0.0, 0.1, 0.2],
                               rtol=1e-6)


def test_index_selects_one_element() -> None:
    np.testing.assert_allclose(payload(adapt.State(adapt.JOINT_POS, index=4)), [0.4], rtol=1e-6)


def test_dim_and_index_are_exclusive() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="dim= or index="):
        adapt.State(adapt.JOINT_POS, dim=2, index=1)


def test_index_past_the_feature_names_the_leaf() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"proprio.*index 7"):
        resolve_arm({"proprio": adapt.State(adapt.JOINT_POS, index=7)})


def test_dim_wider_than_the_feature_names_the_leaf() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"proprio.*dim 9"):
        resolve_arm({"proprio": adapt.State(adapt.JOINT_POS, dim=9)})


def test_index_applies_after_the_rotation_conversion() -> None:
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation.from_rotvec([0.2, 0.4, 0.1])
    out = payload(adapt.State(adapt.EEF_ROT, encoding="rot6d", index=4),
                  arm_obs(encode(rotation, "quat_xyzw")))
    np.testing.assert_allclose(out, encode(rotation, "rot6d")[4:5], atol=1e-5)


# --- optional parts and fill ------------------------------------------------------------------

def test_missing_required_role_is_an_error_naming_leaf_and_role() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"state.*proprio/eef_pos_2") as info:
        resolve_arm({"state": adapt.Concat(adapt.EEF_POS, adapt.EEF_POS_2)})
    assert isinstance(info.value, ValueError)
    assert "optional" in str(info.value)


def test_optional_absent_part_zero_fills_and_warns() -> None:
    adapter = resolve_arm({"state": adapt.Concat(
        adapt.EEF_POS, adapt.State(adapt.EEF_POS_2, dim=3, optional=True))})
    np.testing.assert_allclose(adapter.transform_obs(arm_obs())["state"],
                               [0.1, -0.2, 0.3, 0, 0, 0], rtol=1e-6)
    [note] = adapter.advisories()
    assert note.level == "warn" and note.path == "state" and "proprio/eef_pos_2" in note


def test_optional_present_part_is_read_normally() -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_POS, optional=True))
    np.testing.assert_allclose(adapter.transform_obs(arm_obs()), [0.1, -0.2, 0.3], rtol=1e-6)
    assert adapter.advisories() == []


@pytest.mark.parametrize(("part", "width"), [
    (adapt.State(adapt.EEF_POS_2, index=0, optional=True), 1),
    (adapt.State(adapt.EEF_POS_2, dim=3, optional=True), 3),
    (adapt.State(adapt.EEF_ROT_2, encoding="rot6d", optional=True), 6),
    (adapt.State(adapt.EEF_ROT_2, encoding=("quat_wxyz", "rot6d"), optional=True), 4),
])
def test_zero_fill_width_comes_from_index_dim_or_encoding(part: adapt.State, width: int) -> None:
    np.testing.assert_array_equal(payload(part), np.zeros(width, np.float32))


def test_zero_fill_of_unknown_width_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"slot.*width is unknown"):
        resolve_arm({"slot": adapt.State(adapt.EEF_POS_2, optional=True)})


def test_fill_value_stands_in_for_the_absent_role() -> None:
    out = payload(adapt.Concat(adapt.State("x/extra", dim=2, optional=True, fill=0.5),
                               adapt.GRIPPER_POS))
    np.testing.assert_allclose(out, [0.5, 0.5, 0.04], rtol=1e-6)


def test_fill_needs_optional() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="optional"):
        adapt.State("x/extra", dim=2, fill=0.5)


# --- range, scale, offset ---------------------------------------------------------------------

def test_range_maps_the_env_bounds_affinely() -> None:
    obs = arm_obs()
    obs["gripper"] = np.array([0.02], np.float32)
    out = payload(adapt.State(adapt.GRIPPER_POS, range=(-1.0, 1.0)), obs)
    np.testing.assert_allclose(out, [-0.5], atol=1e-6)  # 0.02 of (0, 0.08) -> -0.5 of (-1, 1)


def test_range_is_a_no_op_when_the_env_range_is_unknown() -> None:
    out = payload(adapt.State(adapt.EEF_POS, range=(0.0, 1.0)))
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3], rtol=1e-6)


def test_range_does_not_clamp() -> None:
    obs = arm_obs()
    obs["gripper"] = np.array([0.16], np.float32)  # outside the space, as a sensor may read
    np.testing.assert_allclose(payload(adapt.State(adapt.GRIPPER_POS, range=(0.0, 1.0)), obs),
                               [2.0], atol=1e-6)


def test_tag_range_supplies_bounds_an_unbounded_space_lacks() -> None:
    tags = arm_tags(eef_pos=adapt.StateTag(adapt.EEF_POS, range=(-2.0, 2.0)))
    out = payload(adapt.State(adapt.EEF_POS, range=(-1.0, 1.0)), tags=tags)
    np.testing.assert_allclose(out, [0.05, -0.1, 0.15], atol=1e-6)


def test_scale_then_offset() -> None:
    out = payload(adapt.State(adapt.GRIPPER_POS, scale=-2.0, offset=1.0))
    np.testing.assert_allclose(out, [1.0 - 2 * 0.04], atol=1e-6)


def test_range_then_scale_applies_both_and_advises() -> None:
    adapter = resolve_arm({"g": adapt.State(adapt.GRIPPER_POS, range=(0.0, 1.0), scale=10.0)})
    np.testing.assert_allclose(adapter.transform_obs(arm_obs())["g"], [5.0], atol=1e-5)
    [note] = adapter.advisories()
    assert note.level == "info" and "g" in note.path


# --- pad_to, dtype, reshape, container --------------------------------------------------------

def test_pad_to_zero_pads_the_assembled_vector() -> None:
    out = payload(adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS, pad_to=8))
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3, 0.04, 0, 0, 0, 0], rtol=1e-6)


def test_pad_to_shorter_than_the_parts_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"proprio.*pad_to=3"):
        resolve_arm({"proprio": adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS, pad_to=3)})


@pytest.mark.parametrize("dtype", ["float64", "float16", "int32"])
def test_dtype_casts_the_result(dtype: str) -> None:
    out = payload(adapt.State(adapt.JOINT_POS, dtype=dtype, scale=10.0))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, np.arange(7), atol=1e-2)


def test_unknown_dtype_is_a_spec_error() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="dtype"):
        adapt.State(adapt.EEF_POS, dtype="not_a_dtype")


def test_reshape_shapes_the_result() -> None:
    out = payload(adapt.Concat(adapt.EEF_POS, adapt.EEF_POS, reshape=(2, 3)))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1], [0.1, -0.2, 0.3], rtol=1e-6)


def test_reshape_to_the_empty_tuple_gives_a_scalar() -> None:
    out = payload(adapt.State(adapt.GRIPPER_POS, reshape=()))
    assert out.shape == () and out.dtype == np.float32
    assert float(out) == pytest.approx(0.04)


def test_reshape_that_cannot_hold_the_result_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"proprio.*reshape"):
        resolve_arm({"proprio": adapt.State(adapt.EEF_POS, reshape=(2, 2))})


def test_reshape_counts_the_padding() -> None:
    out = payload(adapt.State(adapt.EEF_POS, pad_to=4, reshape=(2, 2)))
    np.testing.assert_allclose(out, [[0.1, -0.2], [0.3, 0.0]], rtol=1e-6)


def test_container_list_gives_python_floats() -> None:
    out = payload(adapt.State(adapt.EEF_POS, container="list"))
    assert isinstance(out, list) and all(type(v) is float for v in out)
    assert out == pytest.approx([0.1, -0.2, 0.3])


def test_unknown_container_is_a_spec_error() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="container"):
        adapt.State(adapt.EEF_POS, container="tensor")


# --- rotations --------------------------------------------------------------------------------

@pytest.fixture
def rotation() -> Any:
    transform = pytest.importorskip("scipy.spatial.transform")
    return transform.Rotation.from_euler("xyz", [0.3, -0.4, 1.1])


@pytest.mark.parametrize("source", SOURCE_ENCODINGS)
@pytest.mark.parametrize("target", ENCODINGS)
def test_every_encoding_pair_through_the_adapter(rotation: Any, source: str,
                                                 target: str) -> None:
    width = len(encode(rotation, source))
    obs_space = spaces.Dict({"rot": spaces.Box(-INF, INF, (width,), np.float64)})
    tags = adapt.EnvTags({"rot": adapt.StateTag(adapt.EEF_ROT, encoding=source)},
                         adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    adapter = adapt.resolve(
        tags, obs_space, spaces.Box(-1, 1, (1,)),
        adapt.ModelSpec(adapt.State(adapt.EEF_ROT, encoding=target, dtype="float64"),
                        adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))))
    out = adapter.transform_obs({"rot": encode(rotation, source)})
    assert out.shape == (len(encode(rotation, target)),)
    assert same_rotation_value(out, encode(rotation, target), target), (out,
                                                                         encode(rotation, target))
    if source != target:
        assert f"({source}->{target})" in adapter.explain()


def test_env_native_encoding_is_kept_when_the_model_accepts_it(rotation: Any) -> None:
    quat = encode(rotation, "quat_xyzw")
    adapter = resolve_arm({"rot": adapt.State(adapt.EEF_ROT,
                                              encoding=("rot6d", "quat_xyzw"))})
    np.testing.assert_allclose(adapter.transform_obs(arm_obs(quat))["rot"], quat, atol=1e-6)
    assert "->" not in adapter.explain()


def test_first_preference_is_chosen_when_the_native_one_is_not_listed(rotation: Any) -> None:
    out = payload(adapt.State(adapt.EEF_ROT, encoding=("rot6d", "axis_angle")),
                  arm_obs(encode(rotation, "quat_xyzw")))
    np.testing.assert_allclose(out, encode(rotation, "rot6d"), atol=1e-5)


def test_env_preference_sequence_is_native_first(rotation: Any) -> None:
    tags = arm_tags(eef_quat=adapt.StateTag(adapt.EEF_ROT, encoding=("quat_xyzw", "rot6d")))
    out = payload(adapt.State(adapt.EEF_ROT, encoding="axis_angle"),
                  arm_obs(encode(rotation, "quat_xyzw")), tags=tags)
    np.testing.assert_allclose(out, encode(rotation, "axis_angle"), atol=1e-5)


def test_converting_from_gravity_is_refused() -> None:
    obs_space = spaces.Dict({"g": spaces.Box(-1, 1, (3,), np.float32)})
    tags = adapt.EnvTags({"g": adapt.StateTag("proprio/base_rot", encoding="gravity_xyz")},
                         adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    spec = adapt.ModelSpec({"tilt": adapt.State("proprio/base_rot", encoding="rot6d")},
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    with pytest.raises(adapt.AdapterResolutionError, match="gravity_xyz"):
        adapt.resolve(tags, obs_space, spaces.Box(-1, 1, (1,)), spec)


def test_model_encoding_on_a_feature_without_one_names_the_leaf() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"grip.*proprio/gripper.*rot6d"):
        resolve_arm({"grip": adapt.State(adapt.GRIPPER_POS, encoding="rot6d")})


def test_env_encoding_on_a_registered_non_rotation_role_is_refused() -> None:
    tags = arm_tags(eef_pos=adapt.StateTag(adapt.EEF_POS, encoding="axis_angle"))
    with pytest.raises(adapt.AdapterResolutionError, match=r"eef_pos.*not a rotation"):
        resolve_arm(adapt.State(adapt.EEF_POS), tags=tags)


def test_ad_hoc_rotation_role_converts_on_verbatim_agreement(rotation: Any) -> None:
    obs_space = spaces.Dict({"r": spaces.Box(-INF, INF, (4,), np.float64)})
    tags = adapt.EnvTags({"r": adapt.StateTag("x/object_rot", encoding="quat_xyzw")},
                         adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    adapter = adapt.resolve(tags, obs_space, spaces.Box(-1, 1, (1,)), adapt.ModelSpec(
        adapt.State("x/object_rot", encoding="euler_xyz", dtype="float64"),
        adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))))
    np.testing.assert_allclose(adapter.transform_obs({"r": encode(rotation, "quat_xyzw")}),
                               encode(rotation, "euler_xyz"), atol=1e-6)


def test_env_rotation_width_must_match_its_encoding() -> None:
    tags = arm_tags(eef_quat=adapt.StateTag(adapt.EEF_ROT, encoding="axis_angle"))
    with pytest.raises(adapt.AdapterResolutionError, match=r"eef_quat.*axis_angle.*3"):
        resolve_arm(adapt.State(adapt.EEF_POS), tags=tags)


# --- Split, nested Dict and Tuple -------------------------------------------------------------

def test_split_fields_are_sliced_by_role_with_skips() -> None:
    env = FlatArmEnv()
    obs, _ = env.reset(seed=0)
    spec = adapt.ModelSpec(
        {"state": adapt.Concat(adapt.GRIPPER_POS, adapt.EEF_POS, dtype="float64"),
         "rot": adapt.State(adapt.EEF_ROT, dtype="float64")},
        flat_tags().action)
    adapter = adapt.resolve(flat_tags(), env.observation_space, env.action_space, spec)
    out = adapter.transform_obs(obs)
    np.testing.assert_array_equal(out["state"], [7.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(out["rot"], [3.0, 4.0, 5.0, 6.0])
    assert "<root>[0:3]" in adapter.explain() and "<root>[7:8]" in adapter.explain()


def test_split_widths_must_sum_to_the_leaf() -> None:
    tags = adapt.EnvTags(adapt.Split(adapt.Field(adapt.EEF_POS, dim=3), adapt.Field(dim=5)),
                         adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    with pytest.raises(adapt.AdapterResolutionError, match="sum to 8"):
        adapt.resolve(tags, spaces.Box(-1, 1, (14,)), spaces.Box(-1, 1, (1,)),
                      adapt.ModelSpec(adapt.State(adapt.EEF_POS), tags.action))


def test_split_field_range_comes_from_its_own_slice_of_the_bounds() -> None:
    low = np.array([-1, -1, -1, 0], np.float32)
    high = np.array([1, 1, 1, 0.08], np.float32)
    tags = adapt.EnvTags(adapt.Split(adapt.Field(adapt.EEF_POS, dim=3),
                                     adapt.Field(adapt.GRIPPER_POS, dim=1)),
                         adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    adapter = adapt.resolve(tags, spaces.Box(low, high), spaces.Box(-1, 1, (1,)),
                            adapt.ModelSpec(adapt.State(adapt.GRIPPER_POS, range=(0.0, 1.0)),
                                            tags.action))
    np.testing.assert_allclose(adapter.transform_obs(np.array([0.5, 0.5, 0.5, 0.06])), [0.75],
                               atol=1e-6)


def test_skip_field_carries_only_its_dim() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="skip"):
        adapt.Field(dim=2, range=(0.0, 1.0))


def test_nested_dict_and_tuple_observations() -> None:
    obs_space = spaces.Dict({
        "robot": spaces.Dict({"arm": spaces.Tuple((spaces.Box(-INF, INF, (3,)),
                                                   spaces.Box(0.0, 1.0, (1,))))}),
        "extra": spaces.Box(-1, 1, (2,)),
    })
    tags = adapt.EnvTags(
        {"robot": {"arm": (adapt.StateTag(adapt.EEF_POS), adapt.StateTag(adapt.GRIPPER_POS))}},
        adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    spec = adapt.ModelSpec((adapt.State(adapt.GRIPPER_POS), {"p": adapt.State(adapt.EEF_POS)}),
                           tags.action)
    adapter = adapt.resolve(tags, obs_space, spaces.Box(-1, 1, (1,)), spec)
    obs = {"robot": {"arm": (np.array([1.0, 2.0, 3.0]), np.array([0.5]))}, "extra": np.zeros(2)}
    grip, rest = adapter.transform_obs(obs)
    np.testing.assert_array_equal(grip, [0.5])
    np.testing.assert_array_equal(rest["p"], [1.0, 2.0, 3.0])
    assert "robot.arm[0]" in adapter.explain()


def test_tag_naming_a_missing_key_names_it() -> None:
    tags = arm_tags(wrist=adapt.StateTag(adapt.JOINT_VEL))
    with pytest.raises(adapt.AdapterResolutionError, match="'wrist'"):
        resolve_arm(adapt.State(adapt.EEF_POS), tags=tags)


def test_a_role_tagged_twice_is_an_error() -> None:
    tags = arm_tags(joints=adapt.StateTag(adapt.EEF_POS))
    with pytest.raises(adapt.AdapterResolutionError, match="more than once"):
        resolve_arm(adapt.State(adapt.EEF_POS), tags=tags, obs_space=spaces.Dict({
            **arm_observation_space().spaces, "joints": spaces.Box(-1, 1, (3,))}))


# --- bimanual _2 roles (X-VLA-like) -----------------------------------------------------------

def xvla_state() -> adapt.Concat:
    """20 dims: per arm eef_pos (3), rot6d (6), gripper (1); second arm optional."""
    return adapt.Concat(
        adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="rot6d"),
        adapt.State(adapt.GRIPPER_POS, dim=1),
        adapt.State(adapt.EEF_POS_2, dim=3, optional=True),
        adapt.State(adapt.EEF_ROT_2, encoding="rot6d", optional=True),
        adapt.State(adapt.GRIPPER_POS_2, dim=1, optional=True))


def xvla_action() -> adapt.Action:
    return adapt.Action(
        adapt.Actuator(adapt.ACTION_EEF_POS, dim=3),
        adapt.Actuator(adapt.ACTION_EEF_ROT, dim=6, encoding="rot6d"),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1),
        adapt.Actuator(adapt.ACTION_EEF_POS_2, dim=3),
        adapt.Actuator(adapt.ACTION_EEF_ROT_2, dim=6, encoding="rot6d"),
        adapt.Actuator(adapt.ACTION_GRIPPER_2, dim=1))


def arm_space(prefix: str) -> dict[str, spaces.Space[Any]]:
    return {f"{prefix}pos": spaces.Box(-INF, INF, (3,)),
            f"{prefix}quat": spaces.Box(-1, 1, (4,)),
            f"{prefix}grip": spaces.Box(-1, 1, (1,))}


def arm_role_tags(prefix: str, suffix: str) -> dict[str, Any]:
    return {f"{prefix}pos": adapt.StateTag(adapt.EEF_POS + suffix),
            f"{prefix}quat": adapt.StateTag(adapt.EEF_ROT + suffix, encoding="quat_xyzw"),
            f"{prefix}grip": adapt.StateTag(adapt.GRIPPER_POS + suffix)}


def arm_actuators(suffix: str) -> list[adapt.Actuator]:
    return [adapt.Actuator(adapt.ACTION_EEF_POS + suffix, dim=3),
            adapt.Actuator(adapt.ACTION_EEF_ROT + suffix, dim=3, encoding="axis_angle"),
            adapt.Actuator(adapt.ACTION_GRIPPER + suffix, dim=1)]


def test_xvla_spec_on_a_single_arm_env_zero_fills_and_drops(rotation: Any) -> None:
    tags = adapt.EnvTags(arm_role_tags("", ""), adapt.Action(*arm_actuators("")))
    adapter = adapt.resolve(tags, spaces.Dict(arm_space("")), spaces.Box(-5, 5, (7,)),
                            adapt.ModelSpec({"proprio": xvla_state()}, xvla_action()))
    obs = {"pos": np.array([1.0, 2.0, 3.0]), "quat": encode(rotation, "quat_xyzw"),
           "grip": np.array([0.5])}
    state = adapter.transform_obs(obs)["proprio"]
    assert state.shape == (20,)
    np.testing.assert_allclose(state[:10], np.concatenate(
        [[1, 2, 3], encode(rotation, "rot6d"), [0.5]]), atol=1e-5)
    np.testing.assert_array_equal(state[10:], np.zeros(10))
    warned = [n for n in adapter.advisories() if n.level == "warn"]
    assert len(warned) == 3 and all("_2" in n for n in warned)
    dropped = [n for n in adapter.advisories() if n.level == "info"]
    assert {n.path for n in dropped} == {adapt.ACTION_EEF_POS_2, adapt.ACTION_EEF_ROT_2,
                                         adapt.ACTION_GRIPPER_2}
    model_action = np.concatenate([[0.1, 0.2, 0.3], encode(rotation, "rot6d"), [1.0],
                                   np.full(10, 9.0)])
    env_action = adapter.transform_action(model_action)
    np.testing.assert_allclose(env_action, np.concatenate(
        [[0.1, 0.2, 0.3], encode(rotation, "axis_angle"), [1.0]]), atol=1e-5)


def test_xvla_spec_on_a_bimanual_env_consumes_both_arms(rotation: Any) -> None:
    second = rotation.inv()
    tags = adapt.EnvTags({**arm_role_tags("l_", ""), **arm_role_tags("r_", "_2")},
                         adapt.Action(*arm_actuators(""), *arm_actuators("_2")))
    obs_space = spaces.Dict({**arm_space("l_"), **arm_space("r_")})
    adapter = adapt.resolve(tags, obs_space, spaces.Box(-5, 5, (14,)),
                            adapt.ModelSpec({"proprio": xvla_state()}, xvla_action()))
    obs = {"l_pos": np.array([1.0, 2.0, 3.0]), "l_quat": encode(rotation, "quat_xyzw"),
           "l_grip": np.array([0.5]), "r_pos": np.array([4.0, 5.0, 6.0]),
           "r_quat": encode(second, "quat_xyzw"), "r_grip": np.array([-0.5])}
    state = adapter.transform_obs(obs)["proprio"]
    np.testing.assert_allclose(state[10:], np.concatenate(
        [[4, 5, 6], encode(second, "rot6d"), [-0.5]]), atol=1e-5)
    assert adapter.advisories() == []
    model_action = np.concatenate([[0.1, 0.2, 0.3], encode(rotation, "rot6d"), [1.0],
                                   [0.4, 0.5, 0.6], encode(second, "rot6d"), [-1.0]])
    env_action = adapter.transform_action(model_action)
    np.testing.assert_allclose(env_action[7:], np.concatenate(
        [[0.4, 0.5, 0.6], encode(second, "axis_angle"), [-1.0]]), atol=1e-5)


# --- frames -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("env_frame", "model_frame", "outcome"), [
    (None, None, "silence"),
    ("robot_base", None, "silence"),
    (None, "robot_base", "caution"),
    ("world", "world", "silence"),
    ("world", "robot_base", "error"),
])
def test_frame_rules(env_frame: str | None, model_frame: str | None, outcome: str) -> None:
    tags = arm_tags(eef_pos=adapt.StateTag(adapt.EEF_POS, frame=env_frame))
    leaf = {"pos": adapt.State(adapt.EEF_POS, frame=model_frame)}
    if outcome == "error":
        with pytest.raises(adapt.AdapterResolutionError, match=r"pos.*robot_base.*world"):
            resolve_arm(leaf, tags=tags)
        return
    notes = resolve_arm(leaf, tags=tags).advisories()
    if outcome == "silence":
        assert notes == []
    else:
        [note] = notes
        assert note.level == "caution" and "robot_base" in note and note.path == "pos"


def test_frame_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="frame"):
        adapt.State(adapt.EEF_POS, frame="camera")


def test_a_role_may_feed_several_leaves() -> None:
    out = payload({"a": adapt.State(adapt.EEF_POS), "b": adapt.State(adapt.EEF_POS, index=2)})
    np.testing.assert_allclose(out["a"], [0.1, -0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [0.3], rtol=1e-6)


def test_tag_range_disagreeing_with_finite_space_bounds_is_an_error() -> None:
    tags = arm_tags(gripper=adapt.StateTag(adapt.GRIPPER_POS, range=(0.0, 1.0)))
    with pytest.raises(adapt.AdapterResolutionError, match=r"gripper.*disagrees"):
        resolve_arm(adapt.State(adapt.EEF_POS), tags=tags)


def test_untagged_keys_are_ignored() -> None:
    tags = arm_tags(joints=None, task=None)
    adapter = resolve_arm({"pos": adapt.State(adapt.EEF_POS)}, tags=tags)
    np.testing.assert_allclose(adapter.transform_obs(arm_obs())["pos"], [0.1, -0.2, 0.3],
                               rtol=1e-6)
    with pytest.raises(adapt.AdapterResolutionError, match="proprio/joint_pos"):
        resolve_arm({"j": adapt.State(adapt.JOINT_POS)}, tags=tags)
