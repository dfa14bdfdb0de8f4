"""Adapters: models and envs meet by semantic role.

An env publishes :class:`EnvTags` (which observation leaf is the main camera, which slice of
the action vector moves the end effector); a model declares the payload it ingests and the
action it emits by the same role strings (the vocabulary in :mod:`.roles`). This package
holds the role vocabulary, the env tags with their v1 JSON document and their check against
the env's spaces. It sits beside the array backends (:mod:`rlmesh.backends`), below the
public faces; see ``docs/architecture.md``.
"""

from rlmesh.adapters.action import Action, Actuator
from rlmesh.adapters.env_tags import Field, ImageTag, ObsLeaf, ObsNode, Split, StateTag, TextTag
from rlmesh.adapters.roles import (
    ACTION_DELTA_POS,
    ACTION_DELTA_POS_2,
    ACTION_DELTA_ROT,
    ACTION_DELTA_ROT_2,
    ACTION_EEF_POS,
    ACTION_EEF_POS_2,
    ACTION_EEF_ROT,
    ACTION_EEF_ROT_2,
    ACTION_GRIPPER,
    ACTION_GRIPPER_2,
    ACTION_JOINT_POS,
    ACTION_JOINT_POS_2,
    ACTION_JOINT_VEL,
    EEF_POS,
    EEF_POS_2,
    EEF_ROT,
    EEF_ROT_2,
    ENV_METADATA_KEY,
    GRIPPER_POS,
    GRIPPER_POS_2,
    IMAGE_PRIMARY,
    IMAGE_SECONDARY,
    IMAGE_WRIST,
    IMAGE_WRIST_2,
    INSTRUCTION,
    JOINT_POS,
    JOINT_VEL,
    MODEL_METADATA_KEY,
    NO_ADAPTER,
    ROTATION_DIMS,
    FitMode,
    ImageLayout,
    RotationEncoding,
)
from rlmesh.adapters.tags import EnvTags, tag
from rlmesh.errors import AdapterResolutionError, AdapterSpecError

__all__ = [
    "ACTION_DELTA_POS", "ACTION_DELTA_POS_2", "ACTION_DELTA_ROT", "ACTION_DELTA_ROT_2",
    "ACTION_EEF_POS", "ACTION_EEF_POS_2", "ACTION_EEF_ROT", "ACTION_EEF_ROT_2",
    "ACTION_GRIPPER", "ACTION_GRIPPER_2", "ACTION_JOINT_POS", "ACTION_JOINT_POS_2",
    "ACTION_JOINT_VEL", "EEF_POS", "EEF_POS_2", "EEF_ROT", "EEF_ROT_2", "ENV_METADATA_KEY",
    "GRIPPER_POS", "GRIPPER_POS_2", "IMAGE_PRIMARY", "IMAGE_SECONDARY", "IMAGE_WRIST",
    "IMAGE_WRIST_2", "INSTRUCTION", "JOINT_POS", "JOINT_VEL", "MODEL_METADATA_KEY",
    "NO_ADAPTER", "ROTATION_DIMS", "Action", "Actuator", "AdapterResolutionError",
    "AdapterSpecError", "EnvTags", "Field", "FitMode", "ImageLayout", "ImageTag", "ObsLeaf",
    "ObsNode", "RotationEncoding", "Split", "StateTag", "TextTag", "tag",
]
