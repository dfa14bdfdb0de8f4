"""Adapters: models and envs meet by semantic role.

An env publishes :class:`EnvTags` (which observation leaf is the main camera, which slice of
the action vector moves the end effector); a model declares the payload it ingests and the
action it emits by the same role strings (the vocabulary in :mod:`.roles`). This package
holds the role vocabulary, the env tags and model specs with their v1 JSON documents, and
resolution (:func:`resolve`), which builds the :class:`Adapter` between the two. It sits
low in the house (beside ``protocol`` and ``specs``) so that servers,
runners and models can all use it; see ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmesh.adapters.action import Action, Actuator
    from rlmesh.adapters.adapter import Adapter, AdapterBase
    from rlmesh.adapters.advisory import Advisory
    from rlmesh.adapters.env_tags import Field, ImageTag, ObsLeaf, ObsNode, Split, StateTag, TextTag
    from rlmesh.adapters.model_leaves import (
        Concat,
        ConcatPart,
        Custom,
        CustomEncoding,
        Image,
        ModelLeaf,
        ObsTransform,
        Resample,
        RotationTransform,
        State,
        Text,
    )
    from rlmesh.adapters.model_spec import InputNode, ModelSpec, ObservationRoles
    from rlmesh.adapters.resolution import resolve, resolve_from_contract
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

#: Public name -> the module that defines it (loaded on first use, so that importing one
#: module of this package loads no other).
_FACE: dict[str, str] = {
    "ACTION_DELTA_POS": "rlmesh.adapters.roles",
    "ACTION_DELTA_POS_2": "rlmesh.adapters.roles",
    "ACTION_DELTA_ROT": "rlmesh.adapters.roles",
    "ACTION_DELTA_ROT_2": "rlmesh.adapters.roles",
    "ACTION_EEF_POS": "rlmesh.adapters.roles",
    "ACTION_EEF_POS_2": "rlmesh.adapters.roles",
    "ACTION_EEF_ROT": "rlmesh.adapters.roles",
    "ACTION_EEF_ROT_2": "rlmesh.adapters.roles",
    "ACTION_GRIPPER": "rlmesh.adapters.roles",
    "ACTION_GRIPPER_2": "rlmesh.adapters.roles",
    "ACTION_JOINT_POS": "rlmesh.adapters.roles",
    "ACTION_JOINT_POS_2": "rlmesh.adapters.roles",
    "ACTION_JOINT_VEL": "rlmesh.adapters.roles",
    "EEF_POS": "rlmesh.adapters.roles",
    "EEF_POS_2": "rlmesh.adapters.roles",
    "EEF_ROT": "rlmesh.adapters.roles",
    "EEF_ROT_2": "rlmesh.adapters.roles",
    "ENV_METADATA_KEY": "rlmesh.adapters.roles",
    "GRIPPER_POS": "rlmesh.adapters.roles",
    "GRIPPER_POS_2": "rlmesh.adapters.roles",
    "IMAGE_PRIMARY": "rlmesh.adapters.roles",
    "IMAGE_SECONDARY": "rlmesh.adapters.roles",
    "IMAGE_WRIST": "rlmesh.adapters.roles",
    "IMAGE_WRIST_2": "rlmesh.adapters.roles",
    "INSTRUCTION": "rlmesh.adapters.roles",
    "JOINT_POS": "rlmesh.adapters.roles",
    "JOINT_VEL": "rlmesh.adapters.roles",
    "MODEL_METADATA_KEY": "rlmesh.adapters.roles",
    "NO_ADAPTER": "rlmesh.adapters.roles",
    "ROTATION_DIMS": "rlmesh.adapters.roles",
    "Action": "rlmesh.adapters.action",
    "Actuator": "rlmesh.adapters.action",
    "AdapterResolutionError": "rlmesh.errors",
    "AdapterSpecError": "rlmesh.errors",
    "EnvTags": "rlmesh.adapters.tags",
    "Field": "rlmesh.adapters.env_tags",
    "FitMode": "rlmesh.adapters.roles",
    "ImageLayout": "rlmesh.adapters.roles",
    "ImageTag": "rlmesh.adapters.env_tags",
    "ObsLeaf": "rlmesh.adapters.env_tags",
    "ObsNode": "rlmesh.adapters.env_tags",
    "RotationEncoding": "rlmesh.adapters.roles",
    "Split": "rlmesh.adapters.env_tags",
    "StateTag": "rlmesh.adapters.env_tags",
    "TextTag": "rlmesh.adapters.env_tags",
    "tag": "rlmesh.adapters.tags",
    "Adapter": "rlmesh.adapters.adapter",
    "AdapterBase": "rlmesh.adapters.adapter",
    "Advisory": "rlmesh.adapters.advisory",
    "Concat": "rlmesh.adapters.model_leaves",
    "ConcatPart": "rlmesh.adapters.model_leaves",
    "Custom": "rlmesh.adapters.model_leaves",
    "CustomEncoding": "rlmesh.adapters.model_leaves",
    "Image": "rlmesh.adapters.model_leaves",
    "InputNode": "rlmesh.adapters.model_spec",
    "ModelLeaf": "rlmesh.adapters.model_leaves",
    "ModelSpec": "rlmesh.adapters.model_spec",
    "ObsTransform": "rlmesh.adapters.model_leaves",
    "ObservationRoles": "rlmesh.adapters.model_spec",
    "Resample": "rlmesh.adapters.model_leaves",
    "RotationTransform": "rlmesh.adapters.model_leaves",
    "State": "rlmesh.adapters.model_leaves",
    "Text": "rlmesh.adapters.model_leaves",
    "resolve": "rlmesh.adapters.resolution",
    "resolve_from_contract": "rlmesh.adapters.resolution",
}

__all__ = [
    "ACTION_DELTA_POS", "ACTION_DELTA_POS_2", "ACTION_DELTA_ROT", "ACTION_DELTA_ROT_2",
    "ACTION_EEF_POS", "ACTION_EEF_POS_2", "ACTION_EEF_ROT", "ACTION_EEF_ROT_2", "ACTION_GRIPPER",
    "ACTION_GRIPPER_2", "ACTION_JOINT_POS", "ACTION_JOINT_POS_2", "ACTION_JOINT_VEL", "EEF_POS",
    "EEF_POS_2", "EEF_ROT", "EEF_ROT_2", "ENV_METADATA_KEY", "GRIPPER_POS", "GRIPPER_POS_2",
    "IMAGE_PRIMARY", "IMAGE_SECONDARY", "IMAGE_WRIST", "IMAGE_WRIST_2", "INSTRUCTION",
    "JOINT_POS", "JOINT_VEL", "MODEL_METADATA_KEY", "NO_ADAPTER", "ROTATION_DIMS", "Action",
    "Actuator", "Adapter", "AdapterBase", "AdapterResolutionError", "AdapterSpecError",
    "Advisory", "Concat", "ConcatPart", "Custom", "CustomEncoding", "EnvTags", "Field", "FitMode",
    "Image", "ImageLayout", "ImageTag", "InputNode", "ModelLeaf", "ModelSpec", "ObsLeaf",
    "ObsNode", "ObsTransform", "ObservationRoles", "Resample", "RotationEncoding",
    "RotationTransform", "Split", "State", "StateTag", "Text", "TextTag", "resolve",
    "resolve_from_contract", "tag",
]


def __getattr__(name: str) -> Any:
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
