"""Env tags: construction rules, the v1 document, the join against real Gymnasium spaces,
and EnvServer(tags=...) refusing a misfit and publishing a fit over a real socket."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
import rlmesh.adapters as adapt


class ArmEnv(gym.Env[Any, Any]):
    """A tiny manipulation-shaped env: camera, eef position, quaternion, gripper, task."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (8, 8, 3), np.uint8),
            "eef_pos": spaces.Box(-np.inf, np.inf, (3,), np.float32),
            "eef_quat": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "gripper": spaces.Box(0.0, 0.08, (1,), np.float32),
            "task": spaces.Text(32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, False, {}


def arm_tags(**overrides: Any) -> adapt.EnvTags:
    observation: dict[str, Any] = {
        "pixels": adapt.ImageTag(adapt.IMAGE_PRIMARY),
        "eef_pos": adapt.StateTag(adapt.EEF_POS, frame="robot_base"),
        "eef_quat": adapt.StateTag(adapt.EEF_ROT, encoding="quat_xyzw"),
        "gripper": adapt.StateTag(adapt.GRIPPER_POS, range=(0.0, 0.08)),
        "task": adapt.TextTag(adapt.INSTRUCTION),
    }
    observation.update(overrides)
    return adapt.EnvTags(
        observation={k: v for k, v in observation.items() if v is not None},
        action=adapt.Action(
            adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, reference="current"),
            adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"),
            adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, binary=True, invert=True),
            clip=(-1.0, 1.0)),
    )


def test_the_document_round_trips_through_json() -> None:
    tags = arm_tags()
    text = json.dumps(tags.to_dict())
    again = adapt.EnvTags.from_dict(json.loads(text))
    assert again == tags
    assert again.to_dict() == tags.to_dict()
    doc = tags.to_dict()
    assert doc["observation"]["pixels"] == {"type": "image", "role": "image/primary",
                                            "layout": "hwc"}
    assert doc["action"]["components"][2] == {"dim": 1, "role": "action/gripper",
                                              "binary": True, "invert": True}


def test_split_tuple_and_bare_leaf_round_trip() -> None:
    split = adapt.Split(adapt.Field(adapt.EEF_POS, dim=3), adapt.Field(dim=2),
                        adapt.Field(adapt.EEF_ROT, dim=4, encoding=("quat_wxyz", "quat_xyzw")))
    for observation in (split, (adapt.ImageTag(adapt.IMAGE_WRIST, layout="chw"), split)):
        tags = adapt.EnvTags(observation, adapt.Action(adapt.Actuator(dim=2, fill=0.5)))
        assert adapt.EnvTags.from_dict(json.loads(json.dumps(tags.to_dict()))) == tags


@pytest.mark.parametrize("doc", [
    {"observation": {}},
    {"observation": {}, "action": {"components": []}, "extra": 1},
    {"observation": {"a": {"type": "lidar", "role": "x/l"}}, "action": {"components": []}},
    {"observation": {"a": {"type": "state", "role": "x/l", "colour": 1}},
     "action": {"components": []}},
    {"observation": {"a": {"type": 3}}, "action": {"components": []}},
    {"observation": {"a": {"type": "image", "role": "image/primary", "layout": "whc"}},
     "action": {"components": []}},
    {"observation": {}, "action": {"components": [{"dim": 1, "role": "action/x", "q": 1}]}},
    {"observation": {}, "action": {"components": [{"role": "action/x"}]}},
    {"observation": {}, "action": {"components": [], "clip": [1.0, -1.0]}},
    "not a document",
])
def test_malformed_documents_are_refused(doc: Any) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.EnvTags.from_dict(doc)


def test_construction_refusals() -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.StateTag(adapt.ACTION_GRIPPER)  # an action role on an observation leaf
    with pytest.raises(adapt.AdapterSpecError):
        adapt.StateTag(adapt.EEF_ROT, encoding="quaternion")
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Field(dim=0)
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Field(dim=2, encoding="axis_angle")  # a skip carries only its dim
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Split()
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Actuator(dim=1, binary=True)  # opaque carries only dim and fill
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="gravity_xyz")
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1),
                     adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    with pytest.raises(adapt.AdapterSpecError):
        adapt.EnvTags({"a": "image/primary"}, adapt.Action())


def test_metadata_reads_v1_and_refuses_another_version() -> None:
    tags = arm_tags()
    assert adapt.EnvTags.from_metadata(tags.to_metadata()) == tags
    assert adapt.EnvTags.from_metadata({"other": 1}) is None
    with pytest.raises(adapt.AdapterSpecError, match="v2"):
        adapt.EnvTags.from_metadata({"rlmesh.adapters.v2.env_tags": {}})


def test_tags_that_fit_pass_and_tag_stamps_the_metadata() -> None:
    env = ArmEnv()
    assert adapt.tag(env, arm_tags()) is env
    assert env.metadata[adapt.ENV_METADATA_KEY] == arm_tags().to_dict()


@pytest.mark.parametrize(("overrides", "match"), [
    ({"missing": adapt.StateTag(adapt.JOINT_POS)}, "no key 'missing'"),
    ({"eef_pos": adapt.StateTag(adapt.EEF_POS), "eef_quat": adapt.StateTag(adapt.EEF_POS)},
     "3 wide"),
    ({"eef_quat": adapt.StateTag(adapt.EEF_ROT, encoding="rot6d")}, "rot6d"),
    ({"gripper": adapt.StateTag(adapt.GRIPPER_POS, range=(-1.0, 1.0))}, "disagrees"),
    ({"task": adapt.StateTag(adapt.JOINT_POS)}, "numeric"),
    ({"eef_pos": adapt.ImageTag(adapt.IMAGE_WRIST)}, "3-D Box"),
    ({"pixels": adapt.TextTag(adapt.INSTRUCTION)}, "Text space"),
])
def test_tags_that_do_not_fit_the_spaces_are_refused(overrides: dict, match: str) -> None:
    env = ArmEnv()
    with pytest.raises(adapt.AdapterResolutionError, match=match):
        adapt.tag(env, arm_tags(**overrides))
    assert adapt.ENV_METADATA_KEY not in env.metadata
    adapt.tag(env, arm_tags(**overrides), validate=False)  # the caller may opt out


def test_action_layout_must_cover_a_box() -> None:
    env = gym.make("CartPole-v1")
    tags = adapt.EnvTags(adapt.StateTag(adapt.JOINT_POS), adapt.Action(adapt.Actuator(dim=1)))
    with pytest.raises(adapt.AdapterResolutionError, match="Box"):
        tags.check_spaces(env.observation_space, env.action_space)
    box = spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(adapt.AdapterResolutionError, match="sum to 7"):
        arm_tags().check_spaces(ArmEnv().observation_space, box)
    tags.check_spaces(env.observation_space, spaces.Box(-1, 1, (1,), np.float32))
    env.close()


@pytest.mark.timeout(60)
def test_env_server_refuses_misfit_tags() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match="no key"):
        rlmesh.EnvServer(ArmEnv(), "127.0.0.1:0",
                         tags=arm_tags(elbow=adapt.StateTag(adapt.JOINT_POS)))


@pytest.mark.timeout(60)
def test_env_server_publishes_tags_a_client_reads_back(serve: Any) -> None:
    tags = arm_tags()
    server = serve(ArmEnv, tags=tags)
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        read = adapt.EnvTags.from_metadata(env.metadata)
        assert read == tags
        assert read is not None
        read.check_spaces(env.observation_space, env.action_space)
