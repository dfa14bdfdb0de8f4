"""The action side resolved against real Box spaces: matching by role, fills, drops, rotation
and range bridges, the model-then-env convention order, binary snap and clipping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import rlmesh.adapters as adapt
from rlmesh.adapters.rotations import SOURCE_ENCODINGS
from tests.adapters.arm import INF, arm_action_space, encode, resolve_arm


def bridge(env: adapt.Action, model: adapt.Action,
           space: spaces.Box | None = None) -> adapt.Adapter:
    """Resolve ``model`` against an env whose only tag is the action layout ``env``."""
    tags = adapt.EnvTags({"pos": adapt.StateTag(adapt.EEF_POS)}, env)
    obs_space = spaces.Dict({"pos": spaces.Box(-INF, INF, (3,))})
    return adapt.resolve(tags, obs_space, space or spaces.Box(-1.0, 1.0, (env.dim,), np.float32),
                         adapt.ModelSpec(adapt.State(adapt.EEF_POS), model))


def gripper(**options: Any) -> adapt.Action:
    return adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, **options))


def one(adapter: adapt.Adapter, value: float) -> float:
    return float(adapter.transform_action(np.array([value]))[0])


# --- matching ---------------------------------------------------------------------------------

def test_matching_layouts_pass_through_in_the_env_dtype() -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_POS))
    out = adapter.transform_action(np.array([0.1, -0.2, 0.3, 0.0, 0.1, 0.2, 0.5]))
    assert out.dtype == np.float32 and out.shape == (7,)
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3, 0.0, 0.1, 0.2, 0.5], atol=1e-6)


def test_components_are_matched_by_role_not_position() -> None:
    model = adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1),
                         adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3))
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                       adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    out = bridge(env, model).transform_action([0.9, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(out, [0.1, 0.2, 0.3, 0.9], atol=1e-6)


def test_layout_clip_bounds_the_whole_vector() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3), clip=(-0.5, 0.5))
    out = bridge(env, adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3)),
                 spaces.Box(-INF, INF, (3,))).transform_action([2.0, -3.0, 0.25])
    np.testing.assert_allclose(out, [0.5, -0.5, 0.25])
    assert "clip" in bridge(env, adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3)),
                            spaces.Box(-INF, INF, (3,))).explain()


def test_dims_mismatch_names_the_slice_and_both_dims() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_JOINT_POS, dim=7))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_JOINT_POS, dim=6))
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[0:7\].*6 dims.*7 dims"):
        bridge(env, model)


def test_env_role_no_model_emits_is_an_error_naming_it() -> None:
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                         adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"))
    with pytest.raises(adapt.AdapterResolutionError,
                       match=r"action\[6:7\].*action/gripper.*optional") as info:
        resolve_arm(adapt.State(adapt.EEF_POS), model)
    assert isinstance(info.value, ValueError)


def test_optional_env_actuator_is_filled_when_no_model_emits_it() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                       adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, optional=True, fill=0.5))
    out = bridge(env, adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3))) \
        .transform_action([0.1, 0.2, 0.3])
    np.testing.assert_allclose(out, [0.1, 0.2, 0.3, 0.5], atol=1e-6)


def test_optional_env_actuator_is_used_when_the_model_emits_it() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, optional=True, fill=0.5))
    assert one(bridge(env, gripper()), -0.25) == pytest.approx(-0.25)


def test_opaque_actuator_is_filled_and_matched_by_nothing() -> None:
    env = adapt.Action(adapt.Actuator(dim=2, fill=-1.0),
                       adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    adapter = bridge(env, gripper())
    np.testing.assert_allclose(adapter.transform_action([0.7]), [-1.0, -1.0, 0.7], atol=1e-6)
    assert "fill(-1)" in adapter.explain()


def test_opaque_actuator_carries_only_dim_and_fill() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="opaque"):
        adapt.Actuator(dim=1, scale=2.0)


def test_fill_on_a_required_actuator_is_refused() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="optional"):
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, fill=1.0)


def test_model_components_the_env_has_no_use_for_are_dropped_with_info() -> None:
    model = adapt.Action(adapt.Actuator("x/head_pan", dim=2),
                         adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    adapter = bridge(gripper(), model)
    np.testing.assert_allclose(adapter.transform_action([9.0, 9.0, 0.3]), [0.3], atol=1e-6)
    [note] = adapter.advisories()
    assert note.level == "info" and note.path == "x/head_pan" and "dropped" in note


# --- rotations --------------------------------------------------------------------------------

@pytest.fixture
def rotation() -> Any:
    transform = pytest.importorskip("scipy.spatial.transform")
    return transform.Rotation.from_rotvec([0.4, -0.7, 0.2])


@pytest.mark.parametrize("model_encoding", SOURCE_ENCODINGS)
@pytest.mark.parametrize("env_encoding", SOURCE_ENCODINGS)
def test_rotation_actions_convert_between_every_pair(rotation: Any, model_encoding: str,
                                                     env_encoding: str) -> None:
    model_value = encode(rotation, model_encoding)
    env_value = encode(rotation, env_encoding)
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=len(env_value),
                                      encoding=env_encoding))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=len(model_value),
                                        encoding=model_encoding))
    out = bridge(env, model, spaces.Box(-INF, INF, (len(env_value),), np.float64)) \
        .transform_action(model_value)
    if env_encoding.startswith("quat") and np.dot(out, env_value) < 0:
        out = -out
    np.testing.assert_allclose(out, env_value, atol=1e-6)


def test_rot6d_rowmajor_model_drives_an_axis_angle_env(rotation: Any) -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_POS), adapt.Action(
        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding="rot6d_rowmajor"),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    matrix = rotation.as_matrix()
    rowmajor = [matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1], matrix[2, 0], matrix[2, 1]]
    out = adapter.transform_action(np.concatenate([[0.0, 0.0, 0.0], rowmajor, [1.0]]))
    np.testing.assert_allclose(out[3:6], rotation.as_rotvec(), atol=1e-6)
    assert "(rot6d_rowmajor->axis_angle)" in adapter.explain()


def test_rotation_declared_on_one_side_only_is_an_error() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3))
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[0:3\].*both"):
        bridge(env, model)


def test_gravity_is_refused_on_the_action_side() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="gravity_xyz"):
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="gravity_xyz")


def test_action_encoding_takes_no_preference_list() -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3,
                       encoding=("axis_angle", "euler_xyz"))  # type: ignore[arg-type]


# --- ranges -----------------------------------------------------------------------------------

def test_range_maps_model_range_onto_the_declared_env_range() -> None:
    adapter = bridge(gripper(range=(-1.0, 1.0)), gripper(range=(0.0, 1.0)))
    assert one(adapter, 0.25) == pytest.approx(-0.5)
    assert one(adapter, 1.0) == pytest.approx(1.0)


def test_env_range_is_derived_from_a_bounded_box_slice() -> None:
    space = spaces.Box(np.array([-1, -1, -1, 0.0], np.float32),
                       np.array([1, 1, 1, 0.08], np.float32))
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                       adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                         adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, range=(-1.0, 1.0)))
    out = bridge(env, model, space).transform_action([0.1, 0.2, 0.3, 0.5])
    np.testing.assert_allclose(out, [0.1, 0.2, 0.3, 0.06], atol=1e-6)


def test_model_range_is_a_no_op_against_an_unbounded_env() -> None:
    adapter = bridge(gripper(), gripper(range=(0.0, 1.0)), spaces.Box(-INF, INF, (1,)))
    assert one(adapter, 0.25) == pytest.approx(0.25)


def test_env_range_disagreeing_with_the_space_bounds_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[0:1\].*disagrees"):
        bridge(gripper(range=(0.0, 1.0)), gripper(), spaces.Box(-1.0, 1.0, (1,)))


def test_env_range_equal_to_float32_bounds_is_accepted() -> None:
    adapter = bridge(gripper(range=(0.0, 0.08)), gripper(range=(0.0, 1.0)),
                     spaces.Box(0.0, 0.08, (1,), np.float32))
    assert one(adapter, 0.5) == pytest.approx(0.04)


# --- conventions: scale, invert, threshold, binary, clip --------------------------------------

def test_one_side_applies_scale_then_invert_then_threshold() -> None:
    adapter = bridge(gripper(scale=2.0, invert=True, threshold=-0.5, binary=True), gripper())
    # 0.2: *2 = 0.4, negated -0.4, minus -0.5 = 0.1 -> opens. Threshold first would give
    # -1.4 and invert last -0.9: both close. 0.3 ends at -0.1 -> closes.
    assert [one(adapter, 0.2), one(adapter, 0.3)] == [1.0, -1.0]
    adapter = bridge(gripper(scale=2.0, invert=True, threshold=0.5, binary=True), gripper())
    assert one(adapter, -0.2) == -1.0  # -0.4, 0.4, -0.1 -> closes (other orders open)


def test_model_convention_runs_before_the_env_convention() -> None:
    adapter = bridge(gripper(threshold=1.5, binary=True), gripper(scale=2.0))
    assert one(adapter, 1.0) == 1.0  # model *2 = 2.0, env -1.5 = 0.5 opens (env first: -1)


def test_env_convention_is_inherited_by_every_model() -> None:
    adapter = bridge(gripper(invert=True), gripper(scale=0.5))
    assert one(adapter, 0.8) == pytest.approx(-0.4)


def test_conventions_run_after_the_range_map() -> None:
    adapter = bridge(gripper(range=(-1.0, 1.0), invert=True), gripper(range=(0.0, 1.0)))
    assert one(adapter, 1.0) == pytest.approx(-1.0)


def test_model_side_invert_bridges_a_sign_flipped_gripper() -> None:
    adapter = bridge(gripper(), gripper(invert=True))
    assert one(adapter, 0.3) == pytest.approx(-0.3)


def test_binary_snaps_to_plus_or_minus_one() -> None:
    adapter = bridge(gripper(binary=True), gripper())
    assert [one(adapter, v) for v in (0.4, -0.01, -0.9)] == [1.0, -1.0, -1.0]


def test_binary_boundary_value_opens() -> None:
    assert one(bridge(gripper(binary=True), gripper()), 0.0) == 1.0


def test_binary_with_threshold_switches_at_the_threshold() -> None:
    adapter = bridge(gripper(binary=True), gripper(threshold=0.5))  # a sigmoid-probability model
    assert [one(adapter, v) for v in (0.5, 0.49, 0.9)] == [1.0, -1.0, 1.0]


def test_binary_threshold_order_env_convention() -> None:
    adapter = bridge(gripper(binary=True, scale=2.0, invert=True, threshold=0.5), gripper())
    assert one(adapter, 0.2) == -1.0  # 0.4, -0.4, -0.9 -> closes


def test_binary_snaps_after_the_range_map() -> None:
    adapter = bridge(gripper(range=(-1.0, 1.0)), gripper(range=(0.0, 1.0), binary=True))
    assert [one(adapter, v) for v in (1.2, 0.5, 0.2)] == [1.0, 1.0, -1.0]


def test_env_clip_clamps_to_the_declared_range() -> None:
    adapter = bridge(gripper(range=(-0.5, 0.5), clip=True), gripper(),
                     spaces.Box(-INF, INF, (1,)))
    assert [one(adapter, v) for v in (0.9, -0.9, 0.1)] == pytest.approx([0.5, -0.5, 0.1])


def test_env_clip_clamps_to_the_space_bounds_when_no_range_is_declared() -> None:
    adapter = bridge(gripper(clip=True), gripper(), spaces.Box(-0.25, 0.25, (1,)))
    assert one(adapter, 3.0) == pytest.approx(0.25)


def test_env_clip_without_any_range_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[0:1\].*clip.*range"):
        bridge(gripper(clip=True), gripper(), spaces.Box(-INF, INF, (1,)))


def test_clip_on_a_model_actuator_is_an_error() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[0:1\].*env-side"):
        bridge(gripper(), gripper(clip=True, range=(-1.0, 1.0)))


# --- the model's action value -----------------------------------------------------------------

def test_wrong_action_length_is_a_value_error() -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_POS))
    with pytest.raises(ValueError, match="7"):
        adapter.transform_action(np.zeros(6))


@pytest.mark.parametrize("action", [{"gripper": 1.0}, (0.0,) * 7])
def test_non_flat_action_is_a_type_error(action: Any) -> None:
    with pytest.raises(TypeError, match="flat"):
        resolve_arm(adapt.State(adapt.EEF_POS)).transform_action(action)


def test_action_layout_must_cover_the_space() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match="sum to 7"):
        resolve_arm(adapt.State(adapt.EEF_POS), act_space=arm_action_space(8))


def test_fixed_width_action_role_validates_its_dim() -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=2))
    with pytest.raises(adapt.AdapterResolutionError, match="3 wide"):
        bridge(env, env)


def test_action_space_must_be_a_box() -> None:
    tags = adapt.EnvTags({"pos": adapt.StateTag(adapt.EEF_POS)}, gripper())
    with pytest.raises(adapt.AdapterResolutionError, match="Box"):
        adapt.resolve(tags, spaces.Dict({"pos": spaces.Box(-1, 1, (3,))}), spaces.Discrete(2),
                      adapt.ModelSpec(adapt.State(adapt.EEF_POS), gripper()))


# --- frames and references on actuators --------------------------------------------------------

@pytest.mark.parametrize(("env_value", "model_value", "outcome"), [
    (None, None, "silence"), ("target", None, "silence"), (None, "target", "caution"),
    ("current", "current", "silence"), ("current", "target", "error"),
])
def test_reference_rules_on_delta_actuators(env_value: str | None, model_value: str | None,
                                            outcome: str) -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, reference=env_value))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, reference=model_value))
    if outcome == "error":
        with pytest.raises(adapt.AdapterResolutionError,
                           match=r"action\[0:3\].*reference 'target'.*'current'"):
            bridge(env, model)
        return
    notes = bridge(env, model).advisories()
    assert [n.level for n in notes] == ([] if outcome == "silence" else ["caution"])


@pytest.mark.parametrize(("env_value", "model_value", "outcome"), [
    (None, "world", "caution"), ("world", "world", "silence"), ("world", "robot_base", "error"),
])
def test_frame_rules_on_absolute_pose_actuators(env_value: str | None, model_value: str | None,
                                                outcome: str) -> None:
    env = adapt.Action(adapt.Actuator(adapt.ACTION_EEF_POS, dim=3, frame=env_value))
    model = adapt.Action(adapt.Actuator(adapt.ACTION_EEF_POS, dim=3, frame=model_value))
    if outcome == "error":
        with pytest.raises(adapt.AdapterResolutionError, match="frame"):
            bridge(env, model)
        return
    notes = bridge(env, model).advisories()
    assert [n.level for n in notes] == ([] if outcome == "silence" else ["caution"])


def test_fixed_width_model_actuator_validates_its_dim() -> None:
    model = adapt.Action(adapt.Actuator(adapt.ACTION_EEF_POS, dim=4),
                         adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    with pytest.raises(adapt.AdapterResolutionError, match=r"action/eef_pos.*3 wide.*dim=4"):
        bridge(gripper(), model)
