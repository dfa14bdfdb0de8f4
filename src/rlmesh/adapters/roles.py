"""The role vocabulary: the strings that let an env feature and a model input meet.

A role is ``<kind>/<name>``. The kind says what sort of feature it is (``image/``,
``proprio/``, ``text/``, ``action/``, ``command/``) or marks it deliberately non-standard
(``x/``); any other kind is refused. A role with no ``/`` at all is ad hoc and matches only
the same string. The constants below are the registered roles, the shared conventions that
independently written envs and models agree on; some of them fix the width an env must
declare, and the rotation roles take their width from a rotation encoding.
"""

from __future__ import annotations

from typing import Literal, get_args

from rlmesh.errors import AdapterSpecError

__all__ = [
    "ACTION_DELTA_POS", "ACTION_DELTA_POS_2", "ACTION_DELTA_ROT", "ACTION_DELTA_ROT_2",
    "ACTION_EEF_POS", "ACTION_EEF_POS_2", "ACTION_EEF_ROT", "ACTION_EEF_ROT_2",
    "ACTION_GRIPPER", "ACTION_GRIPPER_2", "ACTION_JOINT_POS", "ACTION_JOINT_POS_2",
    "ACTION_JOINT_VEL", "EEF_POS", "EEF_POS_2", "EEF_ROT", "EEF_ROT_2", "ENV_METADATA_KEY",
    "GRIPPER_POS", "GRIPPER_POS_2", "IMAGE_PRIMARY", "IMAGE_SECONDARY", "IMAGE_WRIST",
    "IMAGE_WRIST_2", "INSTRUCTION", "JOINT_POS", "JOINT_VEL", "MODEL_METADATA_KEY",
    "NO_ADAPTER", "REGISTERED_ROLES", "ROLE_KINDS", "ROTATION_DIMS", "FitMode", "ImageLayout",
    "RotationEncoding", "check_role", "fixed_width", "is_rotation_role", "role_kind",
]

#: Contract-metadata key of a serialized :class:`~rlmesh.adapters.EnvTags` (v1 format).
ENV_METADATA_KEY = "rlmesh.adapters.v1.env_tags"
#: Contract-metadata key of a serialized :class:`~rlmesh.adapters.ModelSpec` (v1 format).
MODEL_METADATA_KEY = "rlmesh.adapters.v1.model_spec"

IMAGE_PRIMARY = "image/primary"
IMAGE_SECONDARY = "image/secondary"
IMAGE_WRIST = "image/wrist"
IMAGE_WRIST_2 = "image/wrist_2"
INSTRUCTION = "text/instruction"
JOINT_POS = "proprio/joint_pos"
JOINT_VEL = "proprio/joint_vel"
EEF_POS = "proprio/eef_pos"
EEF_POS_2 = "proprio/eef_pos_2"
EEF_ROT = "proprio/eef_rot"
EEF_ROT_2 = "proprio/eef_rot_2"
GRIPPER_POS = "proprio/gripper"
GRIPPER_POS_2 = "proprio/gripper_2"
ACTION_JOINT_POS = "action/joint_pos"
ACTION_JOINT_POS_2 = "action/joint_pos_2"
ACTION_JOINT_VEL = "action/joint_vel"
ACTION_DELTA_POS = "action/delta_eef_pos"
ACTION_DELTA_POS_2 = "action/delta_eef_pos_2"
ACTION_DELTA_ROT = "action/delta_eef_rot"
ACTION_DELTA_ROT_2 = "action/delta_eef_rot_2"
ACTION_GRIPPER = "action/gripper"
ACTION_GRIPPER_2 = "action/gripper_2"
ACTION_EEF_POS = "action/eef_pos"
ACTION_EEF_POS_2 = "action/eef_pos_2"
ACTION_EEF_ROT = "action/eef_rot"
ACTION_EEF_ROT_2 = "action/eef_rot_2"

#: A rotation encoding name (the closed set a spec may name).
RotationEncoding = Literal["quat_xyzw", "quat_wxyz", "axis_angle", "rot6d", "rot6d_rowmajor",
                           "euler_xyz", "gravity_xyz"]
#: Axis order of a stored image.
ImageLayout = Literal["hwc", "chw"]
#: How a model input reconciles an aspect-ratio mismatch.
FitMode = Literal["stretch", "crop", "pad"]

#: The native width of every rotation encoding.
ROTATION_DIMS: dict[str, int] = {
    "quat_xyzw": 4, "quat_wxyz": 4, "axis_angle": 3, "rot6d": 6, "rot6d_rowmajor": 6,
    "euler_xyz": 3, "gravity_xyz": 3,
}
assert set(ROTATION_DIMS) == set(get_args(RotationEncoding))

#: The role kinds a role may start with (``x`` marks an intentionally non-standard role).
ROLE_KINDS = frozenset({"image", "proprio", "text", "action", "command", "x"})

_FIXED_WIDTHS: dict[str, int] = {
    EEF_POS: 3, EEF_POS_2: 3, ACTION_DELTA_POS: 3, ACTION_DELTA_POS_2: 3, ACTION_EEF_POS: 3,
    ACTION_EEF_POS_2: 3, "proprio/eef_wrench": 6, "proprio/base_ang_vel": 3,
    "command/base_vel": 3,
}
_ROTATION_ROLES = frozenset({EEF_ROT, EEF_ROT_2, ACTION_DELTA_ROT, ACTION_DELTA_ROT_2,
                             ACTION_EEF_ROT, ACTION_EEF_ROT_2, "proprio/base_rot"})

#: Every registered role (the shared vocabulary; anything else is ad hoc or ``x/``).
REGISTERED_ROLES = frozenset(
    {value for name, value in dict(globals()).items()
     if name.isupper() and isinstance(value, str) and "/" in value and "METADATA" not in name}
    | set(_FIXED_WIDTHS) | _ROTATION_ROLES)


class _NoAdapter:
    """The type of :data:`NO_ADAPTER`: one instance, equal only to itself."""

    _instance: _NoAdapter | None = None

    def __new__(cls) -> _NoAdapter:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "rlmesh.NO_ADAPTER"

    def __reduce__(self) -> str:
        return "NO_ADAPTER"


#: Pass as a model's ``spec=`` to say: feed the env's observation through untouched.
NO_ADAPTER = _NoAdapter()


def role_kind(role: str) -> str | None:
    """The kind of ``role`` (``"proprio"`` for ``proprio/eef_pos``), ``None`` for an ad-hoc one."""
    kind, slash, _ = role.partition("/")
    return kind if slash else None


def check_role(role: object, *, where: str = "role") -> str:
    """Check that ``role`` is a well-formed role string and return it.

    Args:
        role: The candidate role.
        where: What holds it, for the error message.

    Raises:
        AdapterSpecError: If it is not a non-empty string, has an empty name, or starts with
            a kind outside :data:`ROLE_KINDS` (use ``x/`` for a non-standard role).
    """
    if not isinstance(role, str) or not role.strip():
        raise AdapterSpecError(f"{where} must be a non-empty string, not {role!r}")
    kind = role_kind(role)
    if kind is None:
        return role
    if kind not in ROLE_KINDS:
        raise AdapterSpecError(
            f"{where} {role!r} has an unknown kind {kind + '/'!r}: a role starts with one of "
            f"{', '.join(sorted(k + '/' for k in ROLE_KINDS))} (use x/ for a non-standard role)")
    if not role.partition("/")[2]:
        raise AdapterSpecError(f"{where} {role!r} names no feature after its kind")
    return role


def fixed_width(role: str) -> int | None:
    """The width a registered role pins (3 for ``proprio/eef_pos``), or ``None``."""
    return _FIXED_WIDTHS.get(role)


def is_rotation_role(role: str) -> bool:
    """Whether ``role`` is a registered rotation role (its width follows its encoding)."""
    return role in _ROTATION_ROLES
