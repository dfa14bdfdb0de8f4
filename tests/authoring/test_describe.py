"""describe() and describe_json(): the rlmesh.describe.v1 envelope."""

from __future__ import annotations

import datetime
import json
import platform
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from tests.authoring.factories import Broken, Cart, Greedy, Needy, cartpole

ENV_KEYS = {"schema_version", "kind", "target", "env_spec", "env_tags", "params", "variants",
            "runtime"}


def test_the_constants() -> None:
    assert rlmesh.DESCRIBE_METADATA_KEY == "rlmesh.describe.v1"
    assert rlmesh.DESCRIBE_SCHEMA_VERSION == 1


def test_a_factory_envelope_carries_every_documented_field() -> None:
    envelope = rlmesh.describe(Cart)
    assert set(envelope) == ENV_KEYS  # no generated_at unless asked for
    assert envelope["schema_version"] == 1 and envelope["kind"] == "env"
    assert envelope["target"] == {"entrypoint": "tests.authoring.factories:Cart",
                                  "qualname": "tests.authoring.factories:Cart"}
    assert envelope["env_tags"] == {"robot": "cart", "arms": 0}
    spec = envelope["env_spec"]
    assert spec["num_envs"] == 1
    assert spec["action_space"] == {"kind": "discrete", "n": 2, "start": 0, "shape": [],
                                    "dtype": "int64"}
    assert spec["observation_space"]["shape"] == [4]
    assert "inf" in spec["observation_space"]["high"]  # JSON has no infinity
    params = envelope["params"]
    assert [p["name"] for p in params["param_spec"]["params"]] == ["max_steps", "gravity"]
    assert params["param_spec"]["extra"] == "forbid"
    assert params["signature_tier"] == [
        {"name": "max_steps", "type": "int", "required": False, "default": 500},
        {"name": "gravity", "type": "float", "required": False, "default": 9.8}]
    assert envelope["variants"] == {
        "catalog": [{"id": "cart/5", "params": {"max_steps": 5},
                     "metadata": {"name": "5 steps"}},
                    {"id": "cart/10", "params": {"max_steps": 10},
                     "metadata": {"name": "10 steps"}}],
        "variations": {"max_steps": [5, 10, 500]}}
    runtime = envelope["runtime"]
    assert runtime["language"] == "python" and runtime["component"] == "rlmesh-python"
    assert runtime["language_version"] == platform.python_version()
    assert runtime["package_version"] == rlmesh.__version__
    assert runtime["framework_versions"]["gymnasium"] == gym.__version__


def test_the_json_is_canonical_deterministic_and_round_trips() -> None:
    text = rlmesh.describe_json(Cart)
    assert text == rlmesh.describe_json(Cart())  # an instance describes as its class
    assert rlmesh.describe_json(Cart) == text  # same input, same bytes
    assert json.loads(text) == rlmesh.describe(Cart) == Cart.describe()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)


def test_generated_at_is_recorded_only_when_given_and_must_be_rfc3339() -> None:
    stamped = rlmesh.describe(Cart, generated_at="2026-06-28T19:30:00Z")
    assert stamped["generated_at"] == "2026-06-28T19:30:00Z"
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert rlmesh.describe(Cart, generated_at=moment)["generated_at"] == "2026-01-02T03:04:05Z"
    for bad in ("yesterday", "2026-06-28", datetime.datetime(2026, 1, 1)):
        with pytest.raises(ValueError, match="RFC 3339"):
            rlmesh.describe(Cart, generated_at=bad)  # type: ignore[arg-type]


def test_failures_become_badges_and_the_envelope_still_ships() -> None:
    assert rlmesh.describe(Broken)["env_spec"] == {"error": "RuntimeError: no GPU here"}
    needy = rlmesh.describe(Needy)  # make() needs a task: no representative env
    assert "MissingParamError" in needy["env_spec"]["error"]
    assert needy["params"]["signature_tier"] == [{"name": "task", "type": "str",
                                                  "required": True}]

    class Catalogued(Cart):
        @classmethod
        def enumerate_variants(cls) -> Any:
            return [rlmesh.Variant("ok", {"max_steps": 10}),
                    rlmesh.Variant("off", {"max_steps": 7}),
                    rlmesh.Variant("typo", {"max_stepz": 5})]

    catalog = rlmesh.describe(Catalogued)["variants"]["catalog"]
    assert [entry["id"] for entry in catalog] == ["ok", "off", "typo"]
    assert "error" not in catalog[0]
    assert "one of" in catalog[1]["error"] and catalog[1]["params"] == {"max_steps": 7}
    assert "max_stepz" in catalog[2]["error"]

    class Repeated(Cart):
        @classmethod
        def enumerate_variants(cls) -> Any:
            return [rlmesh.Variant("same", {}), rlmesh.Variant("same", {})]

    variants = rlmesh.describe(Repeated)["variants"]
    assert variants["catalog"] is None and "repeated" in variants["catalog_error"]


def test_describing_does_not_close_a_live_instance_but_does_close_its_own() -> None:
    factory = Cart()
    rlmesh.describe(factory)
    assert factory.built == 1 and factory.closed == 0
    env = gym.make("CartPole-v1")
    envelope = rlmesh.describe(env)
    assert envelope["env_spec"]["observation_space"]["shape"] == [4]
    env.reset(seed=0)  # still usable: describe does not close what it was handed
    env.close()


def test_env_ids_and_plain_callables() -> None:
    by_id = rlmesh.describe("CartPole-v1")
    assert by_id["target"] == {"entrypoint": "CartPole-v1", "qualname": "CartPole-v1"}
    assert by_id["env_spec"]["action_space"]["n"] == 2 and by_id["env_tags"] is None
    plain = rlmesh.describe(cartpole)
    assert plain["params"] == {"param_spec": None, "signature_tier": [
        {"name": "length", "type": "float", "required": False, "default": 0.5}]}
    assert plain["env_spec"]["num_envs"] == 1
    vector = rlmesh.describe(lambda: gym.make_vec("CartPole-v1", 3, "sync"))
    assert vector["env_spec"]["num_envs"] == 3
    assert "single_observation_space" in vector["env_spec"]
    assert vector["target"]["entrypoint"] is None  # a lambda cannot be imported back


def test_a_model_envelope_drops_env_fields_and_adds_model_spec() -> None:
    envelope = Greedy.describe()
    assert envelope == rlmesh.describe(Greedy) == rlmesh.describe(Greedy(), kind="model")
    assert envelope["kind"] == "model"
    assert set(envelope) == {"schema_version", "kind", "target", "model_spec", "params",
                             "variants", "runtime"}
    assert envelope["model_spec"] is None
    assert envelope["params"]["param_spec"]["params"][0]["choices"] == [0, 1]
    assert envelope["params"]["signature_tier"] == [
        {"name": "action", "type": "int", "required": False, "default": 1}]
    for model in (rlmesh.Model, rlmesh.numpy.Model):
        assert model.describe()["kind"] == "model"


def test_kind_must_match_and_unknown_objects_are_refused() -> None:
    with pytest.raises(ValueError, match="is an env, not a model"):
        rlmesh.describe(Cart, kind="model")
    with pytest.raises(ValueError, match="kind"):
        rlmesh.describe(Cart, kind="dataset")
    with pytest.raises(TypeError, match="describe"):
        rlmesh.describe(42)
