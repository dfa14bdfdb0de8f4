"""Text inputs and the escape hatches a spec can carry: Custom inputs, CustomEncoding
shims (both sides), host code gated behind ``trust_entrypoints``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rlmesh.adapters as adapt
from tests.adapters.arm import arm_obs, arm_tags, encode, resolve_arm, reverse

# --- text -------------------------------------------------------------------------------------


def test_text_is_read_by_role_under_the_model_key() -> None:
    out = resolve_arm({"prompt": adapt.Text()}).transform_obs(arm_obs())
    assert out == {"prompt": "stack the blocks"}
    assert '"prompt" <- task' in resolve_arm({"prompt": adapt.Text()}).explain()


def test_text_container_list_is_a_one_element_list() -> None:
    out = resolve_arm({"prompt": adapt.Text(container="list")}).transform_obs(arm_obs())
    assert out == {"prompt": ["stack the blocks"]}


def test_text_missing_from_the_observation_takes_the_fill() -> None:
    obs = arm_obs()
    del obs["task"]
    adapter = resolve_arm({"prompt": adapt.Text(fill="do the task")})
    assert adapter.transform_obs(obs) == {"prompt": "do the task"}


def test_text_missing_without_fill_omits_the_slot() -> None:
    obs = arm_obs()
    del obs["task"]
    out = resolve_arm({"prompt": adapt.Text(), "pos": adapt.State(adapt.EEF_POS)}) \
        .transform_obs(obs)
    assert set(out) == {"pos"}


def test_env_without_text_uses_the_fill() -> None:
    adapter = resolve_arm({"prompt": adapt.Text(fill="pick")}, tags=arm_tags(task=None))
    assert adapter.transform_obs(arm_obs()) == {"prompt": "pick"}


def test_absent_non_instruction_text_without_fill_is_omitted_with_caution() -> None:
    adapter = resolve_arm({"goal": adapt.Text("text/goal"), "pos": adapt.State(adapt.EEF_POS)},
                          tags=arm_tags(task=None))
    assert set(adapter.transform_obs(arm_obs())) == {"pos"}
    [note] = adapter.advisories()
    assert note.level == "caution" and note.path == "goal" and "text/goal" in note


def test_instruction_override_replaces_the_env_text() -> None:
    adapter = resolve_arm({"prompt": adapt.Text(container="list")})
    adapter.instruction = "open the drawer"
    assert adapter.transform_obs(arm_obs()) == {"prompt": ["open the drawer"]}
    adapter.instruction = None
    assert adapter.transform_obs(arm_obs()) == {"prompt": ["stack the blocks"]}


def test_instruction_override_must_be_a_string() -> None:
    adapter = resolve_arm({"prompt": adapt.Text()})
    with pytest.raises(TypeError):
        adapter.instruction = 3  # type: ignore[assignment]


def test_text_fill_must_be_a_string() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="fill"):
        adapt.Text(fill=3)  # type: ignore[arg-type]


# --- Custom inputs ----------------------------------------------------------------------------

def test_custom_transform_receives_the_raw_observation() -> None:
    seen: list[Any] = []

    def depth(obs: Any) -> Any:
        seen.append(obs)
        return np.asarray(obs["joints"]) * 10.0

    adapter = resolve_arm({"depth": adapt.Custom(transform=depth),
                           "pos": adapt.State(adapt.EEF_POS)})
    obs = arm_obs()
    out = adapter.transform_obs(obs)
    assert seen == [obs]
    np.testing.assert_allclose(out["depth"], np.arange(7), atol=1e-5)
    assert '"depth" <- custom' in adapter.explain()


def test_custom_entrypoint_is_refused_without_trust() -> None:
    leaf = adapt.Custom(entrypoint="tests.adapters.arm:gripper_twice")
    with pytest.raises(adapt.AdapterResolutionError, match=r"g2.*trust_entrypoints"):
        resolve_arm({"g2": leaf})


def test_custom_entrypoint_is_loaded_when_trusted() -> None:
    leaf = adapt.Custom(entrypoint="tests.adapters.arm:gripper_twice")
    adapter = resolve_arm({"g2": leaf}, trust_entrypoints=True)
    np.testing.assert_allclose(adapter.transform_obs(arm_obs())["g2"], [0.08], atol=1e-6)
    assert "tests.adapters.arm:gripper_twice" in adapter.explain()


@pytest.mark.parametrize("target", ["tests.adapters.arm:NOT_CALLABLE",
                                    "tests.adapters.arm:no_such_name",
                                    "tests.adapters.no_such_module:f"])
def test_bad_entrypoint_is_a_resolution_error(target: str) -> None:
    with pytest.raises(adapt.AdapterResolutionError, match="entrypoint"):
        resolve_arm({"c": adapt.Custom(entrypoint=target)}, trust_entrypoints=True)


@pytest.mark.parametrize("kwargs", [{}, {"transform": len, "entrypoint": "a:b"},
                                    {"entrypoint": "no_colon"}, {"transform": 3}])
def test_custom_takes_exactly_one_valid_source(kwargs: dict[str, Any]) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.Custom(**kwargs)


# --- CustomEncoding ---------------------------------------------------------------------------

@pytest.fixture
def rotation() -> Any:
    transform = pytest.importorskip("scipy.spatial.transform")
    return transform.Rotation.from_rotvec([-0.3, 0.5, 0.9])


def packed(**kwargs: Any) -> adapt.CustomEncoding:
    arms = {"from_base": reverse, "to_base": reverse, **kwargs}
    return adapt.CustomEncoding("rot6d", name="rot6d_reversed",
                                **{k: v for k, v in arms.items() if v is not None})


def test_obs_shim_repacks_after_the_builtin_conversion(rotation: Any) -> None:
    adapter = resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=packed())})
    out = adapter.transform_obs(arm_obs(encode(rotation, "quat_xyzw")))["rot"]
    np.testing.assert_allclose(out, encode(rotation, "rot6d")[::-1], atol=1e-5)
    assert out.dtype == np.float32
    text = adapter.explain()
    assert "host-side encodings:" in text and "rot6d -> rot6d_reversed" in text


def test_obs_shim_keeps_the_declared_dtype(rotation: Any) -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_ROT, encoding=packed(), dtype="float64"))
    assert adapter.transform_obs(arm_obs(encode(rotation, "quat_xyzw"))).dtype == np.float64


def test_action_shim_unpacks_before_the_builtin_conversion(rotation: Any) -> None:
    adapter = resolve_arm(adapt.State(adapt.EEF_POS), adapt.Action(
        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding=packed()),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1)))
    action = np.concatenate([[0, 0, 0], encode(rotation, "rot6d")[::-1], [1.0]])
    np.testing.assert_allclose(adapter.transform_action(action)[3:6], rotation.as_rotvec(),
                               atol=1e-5)


def test_custom_encoding_must_be_the_sole_part() -> None:
    leaf = adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding=packed()))
    with pytest.raises(adapt.AdapterResolutionError, match=r"proprio.*sole part"):
        resolve_arm({"proprio": leaf})


@pytest.mark.parametrize(("options", "word"), [({"pad_to": 8}, "pad_to"),
                                               ({"reshape": (2, 3)}, "reshape"),
                                               ({"container": "list"}, "container")])
def test_custom_encoding_state_takes_no_container_fields(options: dict[str, Any],
                                                         word: str) -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=word):
        resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=packed(), **options)})


def test_obs_side_needs_from_base() -> None:
    with pytest.raises(adapt.AdapterResolutionError, match=r"rot.*from_base"):
        resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=packed(from_base=None))})


def test_action_side_needs_to_base() -> None:
    model = adapt.Action(adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
                         adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6,
                                        encoding=packed(to_base=None)),
                         adapt.Actuator(adapt.ACTION_GRIPPER, dim=1))
    with pytest.raises(adapt.AdapterResolutionError, match=r"action\[3:6\].*to_base"):
        resolve_arm(adapt.State(adapt.EEF_POS), model)


def test_check_inverse_catches_arms_that_do_not_undo_each_other() -> None:
    wrong = packed(to_base=lambda v: np.asarray(v) * 2.0)
    with pytest.raises(adapt.AdapterResolutionError, match=r"rot.*not inverses"):
        resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=wrong)})


def test_check_inverse_false_skips_the_check(rotation: Any) -> None:
    wrong = packed(to_base=lambda v: np.asarray(v) * 2.0)
    adapter = resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=wrong)},
                          check_inverse=False)
    out = adapter.transform_obs(arm_obs(encode(rotation, "quat_xyzw")))["rot"]
    np.testing.assert_allclose(out, encode(rotation, "rot6d")[::-1], atol=1e-5)


def test_non_flat_from_base_output_is_an_error_at_transform(rotation: Any) -> None:
    square = packed(from_base=lambda v: np.asarray(v).reshape(2, 3), to_base=None)
    adapter = resolve_arm({"rot": adapt.State(adapt.EEF_ROT, encoding=square)})
    with pytest.raises(ValueError, match="flat width-6"):
        adapter.transform_obs(arm_obs(encode(rotation, "quat_xyzw")))


def test_string_arms_need_trust(rotation: Any) -> None:
    named = adapt.CustomEncoding("rot6d", from_base="tests.adapters.arm:reverse",
                                 to_base="tests.adapters.arm:reverse")
    leaf = {"rot": adapt.State(adapt.EEF_ROT, encoding=named)}
    with pytest.raises(adapt.AdapterResolutionError, match="trust_entrypoints"):
        resolve_arm(leaf)
    out = resolve_arm(leaf, trust_entrypoints=True).transform_obs(
        arm_obs(encode(rotation, "quat_xyzw")))["rot"]
    np.testing.assert_allclose(out, encode(rotation, "rot6d")[::-1], atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"base": "rot6d"},  # no arm
    {"base": "gravity_xyz", "from_base": reverse},  # not a source
    {"base": "nope", "from_base": reverse},
    {"base": "rot6d", "from_base": reverse, "to_base": "m:f"},  # a mix
    {"base": "rot6d", "from_base": "no_colon"},
])
def test_custom_encoding_construction_rules(kwargs: dict[str, Any]) -> None:
    with pytest.raises(adapt.AdapterSpecError):
        adapt.CustomEncoding(**kwargs)


def test_custom_encoding_keeps_its_base_width_on_an_actuator() -> None:
    with pytest.raises(adapt.AdapterSpecError, match="6 wide"):
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding=packed())
