"""Shared pieces of the adapter resolution tests: a manipulation-shaped env, its tags, and an
independent rotation reference built on SciPy (the tests that need it skip without it)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import rlmesh.adapters as adapt

INF = np.inf


def arm_observation_space() -> spaces.Dict:
    """Position (unbounded), quaternion, a bounded gripper, a joint vector and a task."""
    return spaces.Dict({
        "eef_pos": spaces.Box(-INF, INF, (3,), np.float32),
        "eef_quat": spaces.Box(-1.0, 1.0, (4,), np.float32),
        "gripper": spaces.Box(0.0, 0.08, (1,), np.float32),
        "joints": spaces.Box(-INF, INF, (7,), np.float32),
        "task": spaces.Text(64),
    })


def arm_action_space(width: int = 7, low: float = -1.0, high: float = 1.0) -> spaces.Box:
    """A uniform ``Box`` action space."""
    return spaces.Box(low, high, (width,), np.float32)


def arm_action(**gripper: Any) -> adapt.Action:
    """The usual 7-dim delta-pose layout (gripper options forwarded)."""
    return adapt.Action(
        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, **gripper),
    )


def arm_tags(action: adapt.Action | None = None, **overrides: Any) -> adapt.EnvTags:
    """Tags for :func:`arm_observation_space`; an override of ``None`` drops the key."""
    observation: dict[str, Any] = {
        "eef_pos": adapt.StateTag(adapt.EEF_POS),
        "eef_quat": adapt.StateTag(adapt.EEF_ROT, encoding="quat_xyzw"),
        "gripper": adapt.StateTag(adapt.GRIPPER_POS),
        "joints": adapt.StateTag(adapt.JOINT_POS),
        "task": adapt.TextTag(adapt.INSTRUCTION),
    }
    observation.update(overrides)
    return adapt.EnvTags({k: v for k, v in observation.items() if v is not None},
                         action or arm_action())


def arm_obs(quat: Any = (0.0, 0.0, 0.0, 1.0)) -> dict[str, Any]:
    """One observation with distinct, known values."""
    return {
        "eef_pos": np.array([0.1, -0.2, 0.3], np.float32),
        "eef_quat": np.asarray(quat, np.float32),
        "gripper": np.array([0.04], np.float32),
        "joints": np.arange(7, dtype=np.float32) / 10.0,
        "task": "stack the blocks",
    }


def resolve_arm(input: Any, output: adapt.Action | None = None, tags: adapt.EnvTags | None = None,
                obs_space: spaces.Space[Any] | None = None,
                act_space: spaces.Space[Any] | None = None, **kwargs: Any) -> adapt.Adapter:
    """Resolve a model spec against the arm env (defaults for everything not given)."""
    spec = adapt.ModelSpec(input, output or arm_action())
    return adapt.resolve(tags or arm_tags(), obs_space or arm_observation_space(),
                         act_space or arm_action_space(), spec, **kwargs)


class FlatArmEnv(gym.Env[np.ndarray, np.ndarray]):
    """A Metaworld-shaped env: one flat 14-wide vector (pos, quat, gripper, 6 skipped)."""

    observation_space = spaces.Box(-INF, INF, (14,), np.float64)
    action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.arange(14, dtype=np.float64), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.arange(14, dtype=np.float64) + 1.0, 0.0, False, False, {}


def flat_tags() -> adapt.EnvTags:
    """Split tags for :class:`FlatArmEnv`."""
    return adapt.EnvTags(
        adapt.Split(adapt.Field(adapt.EEF_POS, dim=3),
                    adapt.Field(adapt.EEF_ROT, dim=4, encoding="quat_xyzw"),
                    adapt.Field(adapt.GRIPPER_POS, dim=1),
                    adapt.Field(dim=6)),
        adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                     adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))


def encode(rotation: Any, encoding: str) -> np.ndarray:
    """``rotation`` (a SciPy ``Rotation``) in ``encoding``, computed by SciPy, not rlmesh."""
    matrix = rotation.as_matrix()
    if encoding == "quat_xyzw":
        return np.asarray(rotation.as_quat())
    if encoding == "quat_wxyz":
        return np.roll(rotation.as_quat(), 1)
    if encoding == "axis_angle":
        return np.asarray(rotation.as_rotvec())
    if encoding == "euler_xyz":
        return np.asarray(rotation.as_euler("xyz"))  # lower case: extrinsic
    if encoding == "rot6d":
        return np.concatenate([matrix[:, 0], matrix[:, 1]])
    if encoding == "rot6d_rowmajor":
        return matrix[:, :2].reshape(-1)
    assert encoding == "gravity_xyz"
    return np.asarray(matrix.T @ np.array([0.0, 0.0, -1.0]))


def same_rotation_value(got: Any, want: Any, encoding: str) -> bool:
    """Equal as encodings of one rotation (a quaternion and its negation are the same)."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    if encoding.startswith("quat"):
        return bool(np.allclose(got, want, atol=1e-5) or np.allclose(got, -want, atol=1e-5))
    return bool(np.allclose(got, want, atol=1e-5))


def reverse(value: Any) -> np.ndarray:
    """A packing that stores a vector back to front (its own inverse); an entrypoint target."""
    return np.asarray(value)[::-1].copy()


def gripper_twice(observation: Any) -> np.ndarray:
    """A custom input: the gripper reading doubled; an entrypoint target."""
    return np.asarray(observation["gripper"], np.float64) * 2.0


NOT_CALLABLE = 3
