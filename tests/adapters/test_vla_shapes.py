"""VLA-style pairings end to end: the shapes a multi-model, multi-env project leans on.

Our own specs and envs exercising what the reference's VLA example needs: a stateful adapter
wrapping a resolved one (chunked actions with temporal averaging), a model-private rotation
packing (``CustomEncoding``), a host-computed ``Custom`` slot, a from-scratch pair override, a
20-dim single/bimanual spec, a bare flat ``Split`` observation, and the rules that refuse an
aspect change without ``fit`` and a spec-less model facing a tagged env. The live tests serve a
real Gymnasium env on 127.0.0.1 and run the model through ``rlmesh.numpy.Model``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.numpy import Model, RemoteEnv
from tests.adapters.arm import (
    INF,
    arm_action,
    arm_action_space,
    arm_obs,
    arm_observation_space,
    arm_tags,
)

pytestmark = pytest.mark.timeout(60)

ROT6D_PAIRS = adapt.CustomEncoding(
    base="rot6d", name="rot6d_pairs",
    from_base=lambda v: np.asarray(v)[[0, 3, 1, 4, 2, 5]],  # interleave the two columns
    to_base=lambda v: np.asarray(v)[[0, 2, 4, 1, 3, 5]],
)
HALF_TURN_Z = (0.0, 0.0, 1.0, 0.0)  # quat_xyzw: 180 degrees about z
IDENTITY_ROT6D = np.array([1, 0, 0, 1, 0, 0], np.float32)  # row-major m[:, :2] of I


def arm_space() -> spaces.Dict:
    """Two cameras (4:3), position, quaternion, a bounded gripper and a task."""
    return spaces.Dict({
        "front": spaces.Box(0, 255, (48, 64, 3), np.uint8),
        "wrist": spaces.Box(0, 255, (48, 64, 3), np.uint8),
        "eef_pos": spaces.Box(-INF, INF, (3,), np.float32),
        "eef_quat": spaces.Box(-1.0, 1.0, (4,), np.float32),
        "gripper": spaces.Box(0.0, 0.08, (1,), np.float32),
        "task": spaces.Text(64),
    })


ARM_TAGS = adapt.EnvTags(
    observation={
        "front": adapt.ImageTag(adapt.IMAGE_PRIMARY),
        "wrist": adapt.ImageTag(adapt.IMAGE_WRIST),
        "eef_pos": adapt.StateTag(adapt.EEF_POS),
        "eef_quat": adapt.StateTag(adapt.EEF_ROT, encoding="quat_xyzw"),
        "gripper": adapt.StateTag(adapt.GRIPPER_POS),
        "task": adapt.TextTag(adapt.INSTRUCTION),
    },
    action=adapt.Action(*arm_action().components, clip=(-1.0, 1.0)),
)


def arm_sample(step: int = 0) -> dict[str, Any]:
    """A distinct observation per step (the position's x carries the step number)."""
    return {
        "front": np.full((48, 64, 3), step, np.uint8),
        "wrist": np.full((48, 64, 3), 200, np.uint8),
        "eef_pos": np.array([step, 0.5, -0.5], np.float32),
        "eef_quat": np.array(HALF_TURN_Z, np.float32),
        "gripper": np.array([0.04], np.float32),
        "task": "stack the cups",
    }


class ArmEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A 3-step episode env that records every action it receives."""

    observation_space = arm_space()
    action_space = arm_action_space()

    def __init__(self) -> None:
        self.t = 0
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return arm_sample(0), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.actions.append(np.asarray(action, np.float32))
        self.t += 1
        return arm_sample(self.t), 1.0, self.t >= 3, False, {}


def chunk_spec() -> adapt.ModelSpec:
    """An ACT-shaped spec: a square image (so ``fit`` is needed), a 7-wide state and action."""
    return adapt.ModelSpec(
        input={
            "image": adapt.Image(adapt.IMAGE_PRIMARY, size=32, fit="stretch"),
            "state": adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="axis_angle"),
                                  adapt.GRIPPER_POS),
            "task": adapt.Text(adapt.INSTRUCTION),
        },
        output=arm_action(range=(-1.0, 1.0)),
    )


class ChunkMean(adapt.AdapterBase[Any]):
    """Averages, for the current step, the rows every live chunk predicted for it."""

    def __init__(self, inner: adapt.Adapter, horizon: int) -> None:
        self.inner = inner
        self.horizon = horizon
        self.chunks: deque[np.ndarray] = deque(maxlen=horizon)
        self.resets = 0

    def transform_obs(self, raw_obs: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.inner.transform_obs(raw_obs))

    def transform_action(self, raw_action: object) -> Any:
        self.chunks.append(np.asarray(raw_action, np.float32).reshape(self.horizon, -1))
        rows = [chunk[age] for age, chunk in enumerate(reversed(self.chunks))]
        return self.inner.transform_action(np.mean(rows, axis=0))

    def reset(self, env_index: int | None = None) -> None:
        self.chunks.clear()
        self.resets += 1


def chunk_adapter(horizon: int = 3) -> ChunkMean:
    return ChunkMean(adapt.resolve(ARM_TAGS, arm_space(), arm_action_space(), chunk_spec()),
                     horizon)


def test_stateful_wrapper_averages_the_rows_live_chunks_predicted_for_this_step() -> None:
    adapter = chunk_adapter(horizon=3)
    first = np.zeros((3, 7), np.float32)
    first[:, 0] = [0.1, 0.2, 0.3]
    second = np.zeros((3, 7), np.float32)
    second[:, 0] = [0.5, 0.6, 0.7]
    assert adapter.transform_action(first)[0] == pytest.approx(0.1)
    # Step 2: the first chunk's row 1 (0.2) and the second chunk's row 0 (0.5).
    assert adapter.transform_action(second)[0] == pytest.approx(0.35)
    adapter.reset()
    assert adapter.transform_action(second)[0] == pytest.approx(0.5)
    payload = adapter.transform_obs(arm_sample(5))
    assert payload["image"].shape == (32, 32, 3)
    assert payload["state"][0] == pytest.approx(5.0)
    assert adapter.is_stateful


def test_stateful_wrapper_keeps_spec_driven_conversion_of_each_row() -> None:
    adapter = chunk_adapter(horizon=2)
    chunk = np.tile(np.array([2.0, 0, 0, 0, 0, 0.5, -3.0], np.float32), (2, 1))
    action = adapter.transform_action(chunk)
    np.testing.assert_allclose(action, [1.0, 0, 0, 0, 0, 0.5, -1.0])  # env clip (-1, 1)


@pytest.mark.parametrize("wrap", ["spec=adapter", "NO_ADAPTER + wrap_predict"])
def test_stateful_adapter_runs_live_and_resets_at_each_episode_end(
        serve: Callable[..., Any], wrap: str) -> None:
    env = ArmEnv()
    server = serve(env, tags=ARM_TAGS)
    adapter = chunk_adapter(horizon=3)
    seen: list[float] = []

    def predict(payload: Mapping[str, Any]) -> np.ndarray:
        seen.append(float(payload["state"][0]))
        chunk = np.zeros((3, 7), np.float32)
        chunk[:, 0] = 0.1 * (1 + len(seen))
        return chunk

    if wrap == "spec=adapter":
        model = Model(predict, spec=adapter, on_episode_end=adapter.reset)
    else:
        model = Model(adapter.wrap_predict(predict), spec=rlmesh.NO_ADAPTER,
                      on_episode_end=adapter.reset)
    client = RemoteEnv(server.address)
    try:
        model.run(client, max_episodes=2)
    finally:
        client.close()
    assert seen == [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    assert len(env.actions) == 6
    # Step 2 of episode 1 averages chunk 1's row 1 (0.2) and chunk 2's row 0 (0.3).
    assert env.actions[1][0] == pytest.approx(0.25)
    # Episode 2 starts from an empty ensemble: its first action is its own chunk's row 0.
    assert env.actions[3][0] == pytest.approx(0.5)
    assert adapter.resets >= 2


def test_a_spec_less_model_is_refused_unless_its_predict_is_an_adapters(
        serve: Callable[..., Any]) -> None:
    env = ArmEnv()
    server = serve(env, tags=ARM_TAGS)
    adapter = chunk_adapter()
    client = RemoteEnv(server.address)
    try:
        with pytest.raises(adapt.AdapterResolutionError, match="NO_ADAPTER"):
            Model(lambda obs: np.zeros(7, np.float32)).run(client, max_episodes=1)
        # The reference's VLA harness: Model(adapter.wrap_predict(fn), on_episode_end=...).
        wrapped = adapter.wrap_predict(lambda payload: np.zeros((3, 7), np.float32))
        assert wrapped.adapter is adapter  # type: ignore[attr-defined]
        result = Model(wrapped, on_episode_end=adapter.reset).run(client, max_episodes=2)
    finally:
        client.close()
    assert [e.steps > 0 for e in result.episodes] == [True, True]
    assert adapter.resets == 2


def test_custom_encoding_repacks_a_model_private_rotation_both_ways() -> None:
    def resolved(encoding: Any) -> adapt.Adapter:
        spec = adapt.ModelSpec(
            {"rot": adapt.State(adapt.EEF_ROT, encoding=encoding)},
            adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                         adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding=encoding),
                         adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
        return adapt.resolve(arm_tags(), arm_observation_space(), arm_action_space(), spec)

    quat = (0.0, np.sin(0.3), 0.0, np.cos(0.3))
    plain = np.asarray(resolved("rot6d").transform_obs(arm_obs(quat))["rot"])
    packed = np.asarray(resolved(ROT6D_PAIRS).transform_obs(arm_obs(quat))["rot"])
    np.testing.assert_allclose(packed, plain[[0, 3, 1, 4, 2, 5]], atol=1e-6)
    assert not np.allclose(packed, plain)
    # Out: the model's packing of a rotation is unpacked before rot6d -> axis_angle.
    plain_out = np.concatenate([[0.1, 0.2, 0.3], plain, [0.5]]).astype(np.float32)
    packed_out = np.concatenate([[0.1, 0.2, 0.3], packed, [0.5]]).astype(np.float32)
    expected = resolved("rot6d").transform_action(plain_out)
    np.testing.assert_allclose(resolved(ROT6D_PAIRS).transform_action(packed_out), expected,
                               atol=1e-5)
    assert expected[4] == pytest.approx(0.6, abs=1e-5)  # axis-angle about y, 2 * 0.3
    assert "rot6d_pairs" in resolved(ROT6D_PAIRS).describe()


def test_custom_slot_is_computed_from_the_raw_observation_beside_declared_inputs() -> None:
    def grip_closed(obs: Mapping[str, Any]) -> np.ndarray:
        return np.array([float(obs["gripper"][0]) < 0.01], np.float32)

    spec = adapt.ModelSpec(
        {"state": adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS, container="list"),
         "closed": adapt.Custom(transform=grip_closed)},
        arm_action())
    adapter = adapt.resolve(arm_tags(), arm_observation_space(), arm_action_space(), spec)
    obs = arm_obs()
    payload = adapter.transform_obs(obs)
    assert payload["state"] == pytest.approx([0.1, -0.2, 0.3, 0.04])
    assert payload["closed"].tolist() == [0.0]
    obs["gripper"] = np.array([0.0], np.float32)
    assert adapter.transform_obs(obs)["closed"].tolist() == [1.0]


class BridgeOverride(adapt.AdapterBase[Any]):
    """A from-scratch adapter for one pairing: no tags read, a step counter as episode state."""

    def __init__(self) -> None:
        self.step = 0

    def transform_obs(self, raw_obs: Mapping[str, Any]) -> dict[str, Any]:
        self.step += 1
        return {"x": float(raw_obs["eef_pos"][0]), "phase": self.step}

    def transform_action(self, raw_action: object) -> Any:
        out = np.zeros(7, np.float32)
        out[:3] = np.asarray(raw_action, np.float32)[:3] * 0.5
        return out

    def reset(self, env_index: int | None = None) -> None:
        self.step = 0


def test_pair_override_replaces_resolution_and_runs_live(serve: Callable[..., Any]) -> None:
    env = ArmEnv()
    server = serve(env, tags=ARM_TAGS)
    override = BridgeOverride()
    phases: list[int] = []

    def predict(payload: Mapping[str, Any]) -> np.ndarray:
        phases.append(payload["phase"])
        return np.full(20, payload["x"] / 10.0, np.float32)

    client = RemoteEnv(server.address)
    try:
        Model(predict, spec=override, on_episode_end=override.reset).run(client, max_episodes=2)
    finally:
        client.close()
    assert phases == [1, 2, 3, 1, 2, 3]
    assert [round(float(a[0]), 4) for a in env.actions] == [0.0, 0.05, 0.1] * 2
    assert "BridgeOverride" in override.describe()


def xvla_spec() -> adapt.ModelSpec:
    """A unified single/bimanual 20-dim state and EE6D action (second arm optional)."""
    return adapt.ModelSpec(
        {"state": adapt.Concat(
            adapt.State(adapt.EEF_POS, dim=3),
            adapt.State(adapt.EEF_ROT, encoding="rot6d_rowmajor"),
            adapt.State(adapt.GRIPPER_POS, dim=1),
            adapt.State(adapt.EEF_POS_2, dim=3, optional=True),
            adapt.State(adapt.EEF_ROT_2, encoding="rot6d_rowmajor", optional=True),
            adapt.State(adapt.GRIPPER_POS_2, dim=1, optional=True),
            pad_to=20, container="list")},
        adapt.Action(
            adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
            adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding="rot6d_rowmajor"),
            adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, range=(-1.0, 1.0)),
            adapt.Actuator(adapt.ACTION_DELTA_POS_2, dim=3),
            adapt.Actuator(adapt.ACTION_DELTA_ROT_2, dim=6, encoding="rot6d_rowmajor"),
            adapt.Actuator(adapt.ACTION_GRIPPER_2, dim=1, range=(-1.0, 1.0))))


def xvla_action(first: float, second: float) -> np.ndarray:
    def arm(value: float) -> np.ndarray:
        return np.concatenate([[value, 0, 0], IDENTITY_ROT6D, [value]])
    return np.concatenate([arm(first), arm(second)]).astype(np.float32)


def test_twenty_dim_spec_zero_fills_and_drops_the_second_arm_on_a_single_arm_env() -> None:
    adapter = adapt.resolve(arm_tags(), arm_observation_space(), arm_action_space(), xvla_spec())
    state = adapter.transform_obs(arm_obs())["state"]
    assert len(state) == 20
    assert state[:3] == pytest.approx([0.1, -0.2, 0.3])
    assert state[3:9] == pytest.approx(IDENTITY_ROT6D)
    assert state[9] == pytest.approx(0.04)
    assert state[10:] == pytest.approx([0.0] * 10)
    action = adapter.transform_action(xvla_action(0.25, 0.75))
    np.testing.assert_allclose(action, [0.25, 0, 0, 0, 0, 0, 0.25], atol=1e-6)
    notes = " ".join(str(a) for a in adapter.advisories())
    assert "eef_pos_2" in notes and "gripper_2" in notes


def test_twenty_dim_spec_consumes_and_emits_the_second_arm_on_a_bimanual_env() -> None:
    one = {"pos": spaces.Box(-INF, INF, (3,), np.float32),
           "quat": spaces.Box(-1.0, 1.0, (4,), np.float32),
           "grip": spaces.Box(0.0, 1.0, (1,), np.float32)}
    obs_space = spaces.Dict({"left": spaces.Dict(one), "right": spaces.Dict(one)})

    def side(pos: str, rot: str, grip: str) -> dict[str, Any]:
        return {"pos": adapt.StateTag(pos), "quat": adapt.StateTag(rot, encoding="quat_xyzw"),
                "grip": adapt.StateTag(grip)}

    tags = adapt.EnvTags(
        {"left": side(adapt.EEF_POS, adapt.EEF_ROT, adapt.GRIPPER_POS),
         "right": side(adapt.EEF_POS_2, adapt.EEF_ROT_2, adapt.GRIPPER_POS_2)},
        adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                     adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"),
                     adapt.Actuator(adapt.ACTION_GRIPPER, dim=1),
                     adapt.Actuator(adapt.ACTION_DELTA_POS_2, dim=3),
                     adapt.Actuator(adapt.ACTION_DELTA_ROT_2, dim=3, encoding="axis_angle"),
                     adapt.Actuator(adapt.ACTION_GRIPPER_2, dim=1)))
    adapter = adapt.resolve(tags, obs_space, arm_action_space(14), xvla_spec())
    unit = np.array([0, 0, 0, 1], np.float32)
    obs = {"left": {"pos": np.array([1, 2, 3], np.float32), "quat": unit,
                    "grip": np.array([0.2], np.float32)},
           "right": {"pos": np.array([4, 5, 6], np.float32), "quat": unit,
                     "grip": np.array([0.9], np.float32)}}
    state = adapter.transform_obs(obs)["state"]
    assert state[10:13] == pytest.approx([4, 5, 6])
    assert state[13:19] == pytest.approx(IDENTITY_ROT6D)
    assert state[19] == pytest.approx(0.9)
    action = adapter.transform_action(xvla_action(0.25, 0.75))
    assert action.shape == (14,)
    np.testing.assert_allclose(action[7:], [0.75, 0, 0, 0, 0, 0, 0.75], atol=1e-6)
    assert not [a for a in adapter.advisories() if "zero-filled" in a]


def test_bare_split_tags_a_whole_flat_observation() -> None:
    tags = adapt.EnvTags(
        adapt.Split(adapt.Field(adapt.EEF_POS, 3),
                    adapt.Field(adapt.EEF_ROT, 4, encoding="quat_xyzw"),
                    adapt.Field(dim=5),
                    adapt.Field(adapt.GRIPPER_POS, 1)),
        adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                     adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    spec = adapt.ModelSpec(
        {"state": adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="axis_angle"),
                               adapt.GRIPPER_POS)},
        arm_action())
    adapter = adapt.resolve(tags, spaces.Box(-INF, INF, (13,), np.float64),
                            arm_action_space(4), spec)
    flat = np.arange(13, dtype=np.float64)
    flat[3:7] = HALF_TURN_Z
    state = adapter.transform_obs(flat)["state"]
    np.testing.assert_allclose(state, [0, 1, 2, 0, 0, np.pi, 12], atol=1e-5)
    action = adapter.transform_action(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], np.float32))
    np.testing.assert_allclose(action, [0.1, 0.2, 0.3, 0.7], atol=1e-6)


def test_an_aspect_change_without_fit_is_stretched_and_said() -> None:
    stretched = one_camera(adapt.Image(adapt.IMAGE_PRIMARY, size=32))
    assert any("stretched" in note and note.level == "warn" for note in stretched.advisories())
    cropped = one_camera(adapt.Image(adapt.IMAGE_PRIMARY, size=32, fit="crop"))
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :8] = 255  # only in the left margin that the centred crop drops
    assert cropped.transform_obs({"front": frame})["image"].max() == 0


def one_camera(leaf: adapt.Image) -> adapt.Adapter:
    """Resolve one image input against an env whose only camera is a 48x64 primary."""
    tags = adapt.EnvTags({"front": adapt.ImageTag(adapt.IMAGE_PRIMARY)}, arm_action())
    space = spaces.Dict({"front": spaces.Box(0, 255, (48, 64, 3), np.uint8)})
    return adapt.resolve(tags, space, arm_action_space(),
                         adapt.ModelSpec({"image": leaf}, arm_action()))


def test_a_required_camera_the_env_lacks_falls_back_to_its_only_camera() -> None:
    adapter = one_camera(adapt.Image(adapt.IMAGE_WRIST, height=24, width=32))
    frame = np.full((48, 64, 3), 77, np.uint8)
    assert adapter.transform_obs({"front": frame})["image"].tolist() == np.full(
        (24, 32, 3), 77, np.uint8).tolist()
    assert any("only camera" in str(a) for a in adapter.advisories())


def test_an_optional_camera_the_env_lacks_is_blank_even_with_one_camera() -> None:
    adapter = one_camera(adapt.Image(adapt.IMAGE_WRIST, height=24, width=32, channels=3,
                                     optional=True))
    image = adapter.transform_obs({"front": np.full((48, 64, 3), 77, np.uint8)})["image"]
    assert image.shape == (24, 32, 3)
    assert image.max() == 0
    assert not any("only camera" in str(a) for a in adapter.advisories())
