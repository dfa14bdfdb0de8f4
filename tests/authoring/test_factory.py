"""EnvFactory: validation before construction, prepare once, stamping, and serving it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.params import PARAM_METADATA_KEY, MissingParamError, ParamError, UnknownParamError
from rlmesh.server.sources import TAGS_METADATA_KEY
from tests.authoring.factories import Cart, Needy
from tests.support.deps import need


class Counting(rlmesh.EnvFactory):
    """Counts how often its env constructor runs."""

    params = rlmesh.ParamSpec(rlmesh.Param("size", int, choices=(1, 2)),
                              rlmesh.Param("label", str))
    constructed = 0

    def make(self, *, size: int = 1, label: str = "x", seed: int = 0) -> Any:
        type(self).constructed += 1
        return gym.make("CartPole-v1")


@pytest.mark.parametrize("kwargs", [
    {"size": 3}, {"size": "1"}, {"label": 5}, {"sizee": 1}, {"seed": True}, {"seed": 1.5},
])
def test_a_bad_binding_fails_before_the_constructor_runs(kwargs: dict[str, Any]) -> None:
    Counting.constructed = 0
    with pytest.raises(ParamError):
        Counting().make(**kwargs)
    with pytest.raises(ParamError):
        Counting().serve("127.0.0.1:0", **kwargs)
    assert Counting.constructed == 0


def test_the_documented_error_for_each_failure() -> None:
    with pytest.raises(UnknownParamError) as unknown:
        Counting().make(robtos=2)
    assert unknown.value.names == ["robtos"] and "size" in str(unknown.value)
    with pytest.raises(MissingParamError) as missing:
        Needy().make()
    assert missing.value.name == "task"
    with pytest.raises(ParamError, match="one of"):
        Needy().make(task="c")


def test_make_prepares_once_and_stamps_tags_and_binding() -> None:
    factory = Cart()
    first = factory.make(max_steps=5)
    second = factory.make(gravity=3)
    try:
        assert factory.prepared == 1 and factory.built == 2
        assert first.metadata[TAGS_METADATA_KEY] == {"robot": "cart", "arms": 0}
        assert first.metadata[PARAM_METADATA_KEY] == {"max_steps": 5}
        assert second.metadata[PARAM_METADATA_KEY] == {"gravity": 3.0}
        assert second.unwrapped.gravity == 3.0 and first.spec.max_episode_steps == 5
        assert "rlmesh.params" not in gym.make("CartPole-v1").metadata  # class dict untouched
    finally:
        first.close()
        second.close()


def test_passthrough_forwards_undeclared_keys_through_kwargs_only() -> None:
    class Wrapper(rlmesh.EnvFactory):
        params = rlmesh.ParamSpec(rlmesh.Param("env_id", str), extra="passthrough")

        def make(self, *, env_id: str = "CartPole-v1", **kwargs: Any) -> Any:
            return gym.make(env_id, **kwargs)

    env = Wrapper().make(env_id="Pendulum-v1", g=2.0)
    assert env.unwrapped.g == 2.0
    env.close()

    with pytest.warns(rlmesh.RLMeshWarning, match="ghost"):
        class Strict(rlmesh.EnvFactory):
            params = rlmesh.ParamSpec(rlmesh.Param("ghost", int), extra="passthrough")

            def make(self) -> Any:
                return gym.make("CartPole-v1")
    with pytest.raises(UnknownParamError, match="kwargs"):
        Strict().make(other=1)


def test_without_params_the_binding_passes_through_unchecked() -> None:
    class Blind(rlmesh.EnvFactory):
        def make(self, **kwargs: Any) -> Any:
            return gym.make("CartPole-v1", **kwargs)

    env = Blind().make(max_episode_steps=3)
    assert env.spec.max_episode_steps == 3
    env.close()


def test_the_base_class_is_abstract_and_params_must_be_a_spec() -> None:
    with pytest.raises(TypeError, match="make"):
        rlmesh.EnvFactory()
    with pytest.raises(TypeError, match="ParamSpec"):
        class Wrong(rlmesh.EnvFactory):
            params = {"a": int}  # type: ignore[assignment]

            def make(self) -> Any:
                return None


def test_variants_come_from_a_generator_or_a_list_with_params_copied() -> None:
    assert [v.id for v in Cart.enumerate_variants()] == ["cart/5", "cart/10"]
    shared = {"max_steps": 5}
    first = rlmesh.Variant("a", shared, name="A", instruction="go")
    shared["max_steps"] = 10
    assert first.params == {"max_steps": 5} and first.name == "A"
    assert first.to_dict() == {"id": "a", "params": {"max_steps": 5},
                               "metadata": {"name": "A", "instruction": "go"}}
    with pytest.raises(ValueError):
        rlmesh.Variant("", {})
    with pytest.raises(TypeError):
        rlmesh.Variant(3, {})  # type: ignore[arg-type]
    assert list(rlmesh.EnvFactory.enumerate_variants()) == []


def test_the_faces_export_env_factories_with_their_framework() -> None:
    assert rlmesh.numpy.EnvFactory is rlmesh.EnvFactory
    need("jax")
    import rlmesh.jax as jax

    assert issubclass(jax.EnvFactory, rlmesh.EnvFactory) and jax.EnvFactory.framework == "jax"


def test_env_server_serves_a_factory_class_with_its_tags_and_closes_it(
        serve: Callable[..., rlmesh.EnvServer]) -> None:
    server = serve(Cart)
    env = rlmesh.numpy.RemoteEnv(server.address)
    try:
        metadata = env.env_contract.metadata
        assert metadata[TAGS_METADATA_KEY] == {"robot": "cart", "arms": 0}
        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        assert env.step(env.action_space.sample())[0].shape == (4,)
    finally:
        env.close()
    factory = server.source._on_close.__self__  # the instance EnvServer made of the class
    assert isinstance(factory, Cart) and factory.prepared == 1
    server.shutdown()
    assert factory.closed == 1


def test_a_bound_instance_serves_its_binding_to_every_session(
        serve: Callable[..., rlmesh.EnvServer]) -> None:
    from rlmesh.server.authored import BoundFactory

    server = serve(BoundFactory(Cart(), max_steps=5))
    for _ in range(2):
        env = rlmesh.numpy.RemoteEnv(server.address)
        try:
            assert env.env_contract.metadata[PARAM_METADATA_KEY] == {"max_steps": 5}
            env.reset(seed=0)
            steps, done = 0, False
            while not done:
                _, _, terminated, truncated, _ = env.step(0)
                steps, done = steps + 1, terminated or truncated
            assert steps <= 5
        finally:
            env.close()


def test_make_vec_and_run_take_a_factory() -> None:
    with rlmesh.make_vec(Cart, 2, num_workers=1, max_steps=10) as envs:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4)
    with pytest.raises(ParamError):
        rlmesh.make_vec(Cart, 2, max_steps=7)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, Cart, seeds=[0, 1])
    assert len(result.episodes) == 2
    assert all(episode.steps <= 500 for episode in result.episodes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = rlmesh.Model(lambda observation: 0)
        assert len(model.run(Cart(), seeds=[3]).episodes) == 1
