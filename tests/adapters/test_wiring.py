"""Adapters in the runners, across the wire: run, session, evaluate, vector envs, served and
remote models, every value backend, chunked predictions and frame stacks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.errors import AdapterResolutionError
from tests.adapters.arm import arm_observation_space, arm_tags
from tests.support.deps import need

pytestmark = pytest.mark.timeout(60)


class ArmEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A 4-step arm env with a camera whose pixels count the steps; it records its actions."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        space = dict(arm_observation_space().spaces)
        space["cam"] = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.observation_space = spaces.Dict(space)
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        self.actions: list[np.ndarray] = []
        self.t = 0

    def _obs(self) -> dict[str, Any]:
        return {"eef_pos": np.array([0.1, 0.2, 0.3 + self.t], np.float32),
                "eef_quat": np.array([0.0, 0.0, 0.0, 1.0], np.float32),
                "gripper": np.array([0.04], np.float32),
                "joints": np.zeros(7, np.float32), "task": "stack the blocks",
                "cam": np.full((8, 8, 3), 10 * self.t, np.uint8)}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.actions.append(np.asarray(action))
        self.t += 1
        return self._obs(), 1.0, self.t >= 4, False, {}


TAGS = arm_tags(cam=adapt.ImageTag(adapt.IMAGE_PRIMARY))
SPEC = adapt.ModelSpec(
    input={"image": adapt.Image(size=4, dtype="float32", normalize=True, layout="chw"),
           "state": adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="rot6d")),
           "text": adapt.Text()},
    output=adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding="rot6d"),
                        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, binary=True)))
IDENTITY_ROT6D = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def model_action(payload: Any) -> np.ndarray:
    """A 10-dim model action that echoes the payload's z position (checks the payload too)."""
    assert payload["image"].shape == (3, 4, 4) and payload["image"].dtype == np.float32
    assert len(payload["state"]) == 9 and payload["text"] == "stack the blocks"
    return np.array([0.0, 0.0, float(payload["state"][2]) / 10, *IDENTITY_ROT6D, 0.3],
                    np.float32)


@pytest.fixture
def served() -> Iterator[tuple[ArmEnv, str]]:
    env = ArmEnv()
    server = rlmesh.EnvServer(env, "127.0.0.1:0", tags=TAGS)
    server.start()
    try:
        yield env, server.address
    finally:
        server.shutdown()


def check_env_actions(env: ArmEnv, steps: int = 4) -> None:
    assert len(env.actions) == steps
    for t, action in enumerate(env.actions):
        np.testing.assert_allclose(action, [0, 0, (0.3 + t) / 10, 0, 0, 0, 1.0], atol=1e-6)


def test_model_spec_run_over_the_wire(served: tuple[ArmEnv, str]) -> None:
    env, address = served
    from rlmesh.numpy import Model, RemoteEnv

    with RemoteEnv(address) as remote:
        result = Model(model_action, spec=SPEC).run(remote, max_episodes=1)
    assert result.episodes[0].steps == 4
    check_env_actions(env)


def test_every_value_backend_sees_its_own_values(served: tuple[ArmEnv, str]) -> None:
    env, address = served
    seen: dict[str, Any] = {}

    def plain(payload: Any) -> Any:
        seen["plain"] = payload
        assert isinstance(payload["image"], list) and isinstance(payload["state"], list)
        return [0.0, 0.0, payload["state"][2] / 10, *IDENTITY_ROT6D, 0.3]

    rlmesh.run(rlmesh.Model(plain, spec=SPEC), address, max_episodes=1)
    check_env_actions(env)
    for name in ("torch", "jax"):
        need(name)  # the framework itself (rlmesh.torch imports without torch)
        face = importlib.import_module(f"rlmesh.{name}")
        env.actions.clear()

        def tensor_model(payload: Any, name: str = name) -> Any:
            assert type(payload["image"]).__module__.split(".")[0] in ("torch", "jaxlib", "jax")
            z = float(np.asarray(payload["state"])[2]) / 10
            return np.array([0, 0, z, *IDENTITY_ROT6D, 0.3], np.float32)

        rlmesh.run(face.Model(tensor_model, spec=SPEC), address, max_episodes=1)
        check_env_actions(env)


def test_a_tagged_env_refuses_a_spec_less_model(served: tuple[ArmEnv, str]) -> None:
    _, address = served
    with pytest.raises(AdapterResolutionError, match="declares no spec"):
        rlmesh.run(lambda obs: np.zeros(7, np.float32), address, max_episodes=1)
    raw = rlmesh.Model(lambda obs: np.zeros(7, np.float32) if "cam" in obs else None,
                       spec=rlmesh.NO_ADAPTER)
    assert rlmesh.run(raw, address, max_episodes=1).episodes[0].steps == 4
    assert rlmesh.run(rlmesh.RANDOM_SAMPLE, address, max_episodes=1).episodes[0].steps == 4


def test_a_spec_needs_a_tagged_env() -> None:
    env = ArmEnv()
    with pytest.raises(AdapterResolutionError, match="publishes no adapter tags"):
        rlmesh.run(rlmesh.Model(model_action, spec=SPEC), env, max_episodes=1)
    adapt.tag(env, TAGS)  # tags on a local env work the same
    rlmesh.run(rlmesh.numpy.Model(model_action, spec=SPEC), env, max_episodes=1)
    check_env_actions(env)


def test_session_instruction_and_role_reads(served: tuple[ArmEnv, str]) -> None:
    _env, address = served
    texts = []

    def model(payload: Any) -> Any:
        texts.append(payload["text"])
        return np.zeros(10, np.float32)

    with rlmesh.session(rlmesh.numpy.Model(model, spec=SPEC), address,
                        instruction="open the drawer") as session:
        observation, _ = session.reset(seed=1)
        np.testing.assert_allclose(session.read(observation, adapt.EEF_POS), [0.1, 0.2, 0.3])
        rot6d = session.read(observation, adapt.State(adapt.EEF_ROT, encoding="rot6d"))
        np.testing.assert_allclose(rot6d, IDENTITY_ROT6D, atol=1e-6)
        reader = session.reader(adapt.INSTRUCTION, adapt.Image(size=4, layout="chw"))
        values = reader(observation)  # keyed by role, whether a role or a leaf asked
        assert values[adapt.INSTRUCTION] == "stack the blocks"
        assert values[adapt.IMAGE_PRIMARY].shape == (3, 4, 4)
        assert session.read(observation, adapt.IMAGE_PRIMARY).shape == (8, 8, 3)
        with pytest.raises(AdapterResolutionError, match="no role"):
            session.read(observation, "proprio/joint_vel")
        while not session.done:
            session.step()
    assert texts == ["open the drawer"] * 4


def test_evaluate_across_endpoints() -> None:
    envs = [ArmEnv(), ArmEnv()]
    servers = [rlmesh.EnvServer(e, "127.0.0.1:0", tags=TAGS) for e in envs]
    for server in servers:
        server.start()
    try:
        result = rlmesh.evaluate(rlmesh.numpy.Model(model_action, spec=SPEC),
                                 [s.address for s in servers], episodes=4)
    finally:
        for server in servers:
            server.shutdown()
    assert len(result.episodes) == 4 and all(e.steps == 4 for e in result.episodes)
    assert sum(len(e.actions) for e in envs) == 16


def test_vector_lanes_batch_their_payloads(served: tuple[ArmEnv, str]) -> None:
    env, address = served
    second = ArmEnv()
    other = rlmesh.EnvServer(second, "127.0.0.1:0", tags=TAGS)
    other.start()
    batches = []

    class Batched(rlmesh.numpy.Model):
        def predict_batch(self, payloads: Any) -> Any:
            batches.append(payloads["image"].shape)
            assert payloads["text"] == ["stack the blocks"] * len(payloads["text"])
            return np.stack([np.array([0, 0, s[2] / 10, *IDENTITY_ROT6D, 0.3], np.float32)
                             for s in payloads["state"]])

    try:
        with rlmesh.numpy.RemoteVectorEnv([address, other.address]) as vector:
            result = rlmesh.run(Batched(spec=SPEC), vector, max_episodes=2)
    finally:
        other.shutdown()
    assert [e.steps for e in result.episodes] == [4, 4]
    assert batches[0] == (2, 3, 4, 4)
    check_env_actions(env)
    check_env_actions(second)


def test_frame_stacks_advance_every_step_under_chunked_replay(
        served: tuple[ArmEnv, str]) -> None:
    _, address = served
    spec = adapt.ModelSpec(input={"frames": adapt.Image(stack=3)}, output=SPEC.output)
    seen = []

    class Chunky(rlmesh.numpy.Model):
        def predict_chunk(self, payload: Any, horizon: int) -> Any:
            seen.append(payload["frames"][:, 0, 0, 0].tolist())
            return np.zeros((horizon, 10), np.float32)

    rlmesh.run(Chunky(spec=spec), address, max_episodes=2, execution_horizon=2)
    # Steps 0 and 2 predict; the window still saw step 1's frame; episodes do not mix.
    assert seen == [[0, 0, 0], [0, 10, 20], [0, 0, 0], [0, 10, 20]]


def test_a_served_model_publishes_its_spec(served: tuple[ArmEnv, str]) -> None:
    env, address = served
    model_server = rlmesh.numpy.Model(model_action, spec=SPEC).serve("127.0.0.1:0",
                                                                      block=False)
    try:
        remote = rlmesh.RemoteModel(model_server.address)
        assert remote.spec == SPEC
        rlmesh.run(remote, address, max_episodes=1)
        remote.close()
    finally:
        model_server.shutdown()
    check_env_actions(env)


def test_a_custom_adapter_as_spec_is_reset_per_episode(served: tuple[ArmEnv, str]) -> None:
    env, address = served

    class Counting(adapt.AdapterBase[np.ndarray]):
        def __init__(self) -> None:
            self.steps = 0
            self.resets = 0

        def transform_obs(self, raw_obs: Any) -> Any:
            self.steps += 1
            return raw_obs["eef_pos"]

        def transform_action(self, raw_action: Any) -> np.ndarray:
            return np.concatenate([raw_action, np.zeros(4, np.float32)])

        def reset(self, env_index: int | None = None) -> None:
            self.resets += 1

    adapter = Counting()
    rlmesh.run(rlmesh.numpy.Model(lambda pos: pos / 10, spec=adapter), address, max_episodes=2)
    assert adapter.steps == 8 and adapter.resets == 2
    np.testing.assert_allclose(env.actions[0][:3], [0.01, 0.02, 0.03], atol=1e-6)
