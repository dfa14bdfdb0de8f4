"""The role vocabulary: registered constants, the open-vocabulary rule, NO_ADAPTER."""

from __future__ import annotations

import copy

import pytest

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.adapters.roles import REGISTERED_ROLES, check_role, fixed_width, is_rotation_role


def test_registered_roles_carry_their_kind_prefix() -> None:
    assert adapt.IMAGE_PRIMARY == "image/primary"
    assert adapt.INSTRUCTION == "text/instruction"
    assert adapt.EEF_POS == "proprio/eef_pos"
    assert adapt.GRIPPER_POS == "proprio/gripper"
    assert adapt.ACTION_DELTA_POS == "action/delta_eef_pos"
    for role in REGISTERED_ROLES:
        assert check_role(role) == role


def test_every_bimanual_role_is_distinct_from_its_first_arm() -> None:
    names = [n for n in adapt.__all__ if n.endswith("_2")]
    assert len(names) == 10
    for name in names:
        second, first = getattr(adapt, name), getattr(adapt, name[:-2])
        assert second != first and second.split("/")[0] == first.split("/")[0]


def test_rotation_dims_are_the_native_widths() -> None:
    assert adapt.ROTATION_DIMS["quat_xyzw"] == 4
    assert adapt.ROTATION_DIMS["axis_angle"] == 3
    assert adapt.ROTATION_DIMS["rot6d"] == 6
    assert is_rotation_role(adapt.EEF_ROT) and not is_rotation_role(adapt.EEF_POS)
    assert fixed_width(adapt.EEF_POS) == 3 and fixed_width(adapt.JOINT_POS) is None


def test_x_prefix_and_known_kinds_are_open_vocabulary() -> None:
    assert check_role("x/target_pos") == "x/target_pos"
    assert check_role("proprio/ankle_angle") == "proprio/ankle_angle"
    assert check_role("adhoc") == "adhoc"


@pytest.mark.parametrize("role", ["camera/front", "", "  ", "proprio/", 3, None])
def test_unknown_kind_or_malformed_role_is_refused(role: object) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        check_role(role)


def test_an_unknown_kind_message_points_at_the_x_escape() -> None:
    with pytest.raises(ValueError, match="x/"):
        adapt.StateTag("camera/front")


def test_metadata_keys_are_versioned() -> None:
    assert adapt.ENV_METADATA_KEY == "rlmesh.adapters.v1.env_tags"
    assert adapt.MODEL_METADATA_KEY == "rlmesh.adapters.v1.model_spec"


def test_no_adapter_is_one_sentinel_and_a_model_accepts_it() -> None:
    assert rlmesh.NO_ADAPTER is adapt.NO_ADAPTER
    assert copy.deepcopy(rlmesh.NO_ADAPTER) is rlmesh.NO_ADAPTER
    assert repr(rlmesh.NO_ADAPTER) == "rlmesh.NO_ADAPTER"
    model = rlmesh.Model(lambda obs: 0, spec=rlmesh.NO_ADAPTER)
    assert model.spec is rlmesh.NO_ADAPTER
    assert issubclass(adapt.AdapterResolutionError, rlmesh.RLMeshError)
    assert issubclass(adapt.AdapterResolutionError, ValueError)
