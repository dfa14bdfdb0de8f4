"""What a resolved adapter says about itself (explain/describe, advisories) and the
AdapterBase escape hatch; one end-to-end pairing over a real loopback server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rlmesh
import rlmesh.adapters as adapt
from tests.adapters.arm import FlatArmEnv, arm_obs, arm_tags, flat_tags, resolve_arm, reverse


def full_adapter() -> adapt.Adapter:
    return resolve_arm({
        "state": adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="rot6d"),
                              adapt.State(adapt.EEF_POS_2, dim=3, optional=True), pad_to=16),
        "rot": adapt.State(adapt.EEF_ROT, encoding=adapt.CustomEncoding(
            "rot6d", from_base=reverse, to_base=reverse, name="rev6d")),
        "prompt": adapt.Text(),
        "extra": adapt.Custom(transform=len),
    }, adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                    adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding="rot6d"),
                    adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, range=(0.0, 1.0),
                                   binary=True)))


def test_explain_names_every_payload_key_and_both_sides() -> None:
    text = full_adapter().explain()
    for key in ("state", "rot", "prompt", "extra"):
        assert f'"{key}" <-' in text
    assert text.index("observation:") < text.index("action:")
    for role in (adapt.ACTION_DELTA_POS, adapt.ACTION_DELTA_ROT, adapt.ACTION_GRIPPER):
        assert f'"{role}"' in text


def test_explain_shows_conversions_fills_and_padding() -> None:
    text = full_adapter().explain()
    assert "eef_quat (quat_xyzw->rot6d)" in text
    assert "zeros(3)" in text
    assert "pad_to(16)" in text
    assert "model[3:9] (rot6d->axis_angle)" in text
    assert "binary" in text


def test_explain_lists_host_side_encodings_and_advisories() -> None:
    text = full_adapter().explain()
    assert "host-side encodings:" in text and '"rot" rot6d -> rev6d' in text
    assert "advisories:" in text and "[warn]" in text and "proprio/eef_pos_2" in text


def test_explain_shows_root_slices_for_a_flat_split_env() -> None:
    env = FlatArmEnv()
    adapter = adapt.resolve(flat_tags(), env.observation_space, env.action_space,
                            adapt.ModelSpec(adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS),
                                            flat_tags().action))
    assert "concat(<root>[0:3], <root>[7:8])" in adapter.explain()


def test_explain_of_a_clean_pairing_has_no_advisories() -> None:
    adapter = resolve_arm({"pos": adapt.State(adapt.EEF_POS)})
    assert adapter.advisories() == [] and "advisories" not in adapter.explain()


def test_describe_is_explain() -> None:
    adapter = full_adapter()
    assert adapter.describe() == adapter.explain()


def test_advisories_are_strings_with_level_and_path() -> None:
    notes = full_adapter().advisories()
    assert notes and all(isinstance(n, str) and n.level in ("info", "caution", "warn")
                         for n in notes)
    with pytest.raises(ValueError):
        adapt.Advisory("x", level="fatal")  # type: ignore[arg-type]


def test_resolve_refuses_the_wrong_argument_types() -> None:
    spec = adapt.ModelSpec(adapt.State(adapt.EEF_POS), arm_tags().action)
    with pytest.raises(TypeError, match="EnvTags"):
        adapt.resolve(arm_tags().to_dict(), None, None, spec)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ModelSpec"):
        adapt.resolve(arm_tags(), None, None, spec.to_dict())  # type: ignore[arg-type]


def test_payload_containers_mirror_the_spec_tree() -> None:
    adapter = resolve_arm((adapt.State(adapt.GRIPPER_POS), {"p": adapt.Text()}))
    out = adapter.transform_obs(arm_obs())
    assert isinstance(out, tuple) and isinstance(out[1], dict)
    assert out[1] == {"p": "stack the blocks"}


# --- the resolved adapter as an AdapterBase ---------------------------------------------------

def test_resolved_adapter_is_an_adapter_base_and_stateless() -> None:
    adapter = full_adapter()
    assert isinstance(adapter, adapt.AdapterBase)
    assert adapter.is_stateful is False
    before = adapter.transform_obs(arm_obs())["state"]
    adapter.reset()
    adapter.reset(env_index=3)
    np.testing.assert_array_equal(adapter.transform_obs(arm_obs())["state"], before)


def test_resolved_adapter_remembers_its_spec_and_tags() -> None:
    adapter = resolve_arm({"pos": adapt.State(adapt.EEF_POS)})
    assert adapter.tags == arm_tags()
    assert adapter.spec == adapt.ModelSpec({"pos": adapt.State(adapt.EEF_POS)}, arm_tags().action)


def test_wrap_predict_runs_obs_model_action() -> None:
    adapter = resolve_arm({"pos": adapt.State(adapt.EEF_POS)})
    seen: list[Any] = []

    def predict(payload: dict[str, Any]) -> np.ndarray:
        seen.append(payload)
        return np.concatenate([payload["pos"], np.zeros(3), [1.0]])

    act = adapter.wrap_predict(predict)
    out = act(arm_obs())
    assert act.__name__ == "predict"
    np.testing.assert_allclose(seen[0]["pos"], [0.1, -0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3, 0, 0, 0, 1.0], rtol=1e-6)


class HoldGripper(adapt.AdapterBase[np.ndarray]):
    """Keeps the gripper closed for the first two steps of an episode."""

    def __init__(self, inner: adapt.Adapter) -> None:
        self.inner = inner
        self.steps = 0

    def transform_obs(self, raw_obs: Any) -> Any:
        return self.inner.transform_obs(raw_obs)

    def transform_action(self, raw_action: Any) -> np.ndarray:
        self.steps += 1
        action = np.array(self.inner.transform_action(raw_action))
        if self.steps <= 2:
            action[-1] = -1.0
        return action

    def reset(self, env_index: int | None = None) -> None:
        self.steps = 0


def test_adapter_base_subclass_wraps_a_resolved_adapter() -> None:
    custom = HoldGripper(resolve_arm({"pos": adapt.State(adapt.EEF_POS)}))
    act = custom.wrap_predict(lambda payload: np.concatenate([payload["pos"], [0, 0, 0, 1.0]]))
    grips = [float(act(arm_obs())[-1]) for _ in range(3)]
    assert grips == [-1.0, -1.0, 1.0]
    custom.reset()
    assert float(act(arm_obs())[-1]) == -1.0


def test_adapter_base_subclass_describes_itself_by_class() -> None:
    custom = HoldGripper(resolve_arm({"pos": adapt.State(adapt.EEF_POS)}))
    assert "HoldGripper" in custom.describe() and "gripper closed" in custom.describe()
    assert custom.describe() == custom.explain()
    assert custom.is_stateful is True and custom.advisories() == []


def test_adapter_base_needs_both_transforms() -> None:
    class Half(adapt.AdapterBase[Any]):
        def transform_obs(self, raw_obs: Any) -> Any:
            return raw_obs

    with pytest.raises(TypeError):
        Half()  # type: ignore[abstract]


# --- over a real server -----------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_resolve_from_contract_drives_a_served_env(serve: Any) -> None:
    server = serve(FlatArmEnv, tags=flat_tags())
    spec = adapt.ModelSpec({"state": adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS)},
                           adapt.Action(adapt.Actuator(adapt.ACTION_GRIPPER, dim=1,
                                                       binary=True),
                                        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3)))
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        adapter = adapt.resolve_from_contract(env.env_contract, spec)
        obs, _ = env.reset(seed=0)
        np.testing.assert_allclose(adapter.transform_obs(obs)["state"], [0, 1, 2, 7])
        action = adapter.transform_action(np.array([0.3, 0.5, -0.5, 0.25]))
        np.testing.assert_allclose(action, [0.5, -0.5, 0.25, 1.0])
        obs, *_ = env.step(action)
        np.testing.assert_allclose(adapter.transform_obs(obs)["state"], [1, 2, 3, 8])


@pytest.mark.timeout(60)
def test_resolve_from_contract_without_tags_says_how_to_publish_them(serve: Any) -> None:
    server = serve(FlatArmEnv)
    spec = adapt.ModelSpec(adapt.State(adapt.EEF_POS), flat_tags().action)
    with rlmesh.numpy.RemoteEnv(server.address) as env, \
            pytest.raises(adapt.AdapterResolutionError, match="tags"):
        adapt.resolve_from_contract(env.env_contract, spec)


def test_explain_suffixes_the_agreed_frame_and_reference() -> None:
    tags = arm_tags(eef_pos=adapt.StateTag(adapt.EEF_POS, frame="robot_base"),
                    action=adapt.Action(
                        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, reference="target"),
                        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle"),
                        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    text = resolve_arm({"state": adapt.Concat(adapt.EEF_POS, adapt.GRIPPER_POS)},
                       tags=tags).explain()
    assert "concat(eef_pos@robot_base, gripper)" in text
    assert "model[0:3]~target" in text
    assert "@" not in resolve_arm({"state": adapt.State(adapt.GRIPPER_POS)}).explain()
