"""``rlmesh.run``: episode counts, seeds, determinism, success, Ctrl+C and env ownership.

Every run is checked against a hand-written Gymnasium loop driven by the same seeds and
actions, on every kind of env a run accepts (``tests.support.runs.TARGETS``). Servers are
real, in-process, on 127.0.0.1 port 0.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh.models.model import Model as NumpyModel
from tests.support.episodes import hand_loop
from tests.support.runs import (
    SEEDS,
    TARGETS,
    VECTOR_TARGETS,
    Lifecycle,
    Recorder,
    SuccessEnv,
    angle_loop,
    angle_policy,
    assert_endpoint_free,
    cartpole,
    connect,
    make_target,
    outcomes,
    random_loop,
)

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# == 1. episode count, seeds and limits =======================================================


@pytest.mark.parametrize(("seeds", "max_episodes", "expected"), [
    pytest.param(None, None, [None], id="default-one"),
    pytest.param([5, 6, 7], None, [5, 6, 7], id="len-seeds"),
    pytest.param([5, 6, 7], 2, [5, 6], id="max-episodes-caps-seeds"),
    pytest.param(None, 4, [None] * 4, id="max-episodes-unseeded"),
    pytest.param((np.int64(3), None), None, [3, None], id="numpy-int-and-none"),
    pytest.param([1, 2], 0, [], id="zero"),
])
def test_episode_count_rules(closing: Any, seeds: Any, max_episodes: int | None,
                             expected: list[int | None]) -> None:
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), seeds=seeds,
                        max_episodes=max_episodes)
    assert result.planned == result.num_episodes == len(expected)
    assert [e.index for e in result.episodes] == list(range(len(expected)))
    assert [e.seed for e in result.episodes] == expected
    assert all(type(e.seed) is int for e in result.episodes if e.seed is not None)
    assert result.settings["seeds"] == expected
    assert result.complete and not result.interrupted
    assert result.total_steps == sum(e.steps for e in result.episodes)


@pytest.mark.parametrize("kind", ["local", "sync-vector"])
def test_too_few_seeds_or_bad_limits_raise_before_playing(serve: Any, closing: Any,
                                                          kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    loads: list[str] = []

    class Watch(NumpyModel):
        def load(self) -> None:
            loads.append("load")

    model = Watch(angle_policy)
    with pytest.raises(ValueError, match="only 2 seeds"):
        rlmesh.run(model, env, seeds=[1, 2], max_episodes=3)
    with pytest.raises(ValueError, match="max_episode_steps"):
        rlmesh.run(model, env, seeds=[1], max_episode_steps=0)
    with pytest.raises(ValueError, match="max_episodes"):
        rlmesh.run(model, env, max_episodes=-1)
    with pytest.raises(TypeError, match="seeds"):
        rlmesh.run(model, env, seeds=[1.5])
    assert loads == []  # nothing was started
    assert rlmesh.run(model, env, seeds=[1]).num_episodes == 1  # the env is still usable


@pytest.mark.parametrize("kind", TARGETS)
def test_max_episode_steps_truncates(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=SEEDS, max_episode_steps=5)
    assert [(e.steps, e.terminated, e.truncated) for e in result.episodes] == \
        [(5, False, True)] * len(SEEDS)
    assert result.settings["max_episode_steps"] == 5
    # A limit some episodes reach and others do not: the same as a hand-written loop.
    limit = 14
    expected = random_loop(SEEDS, max_steps=limit)
    assert {o[0] == limit for o in expected} == {True, False}, "pick seeds on both sides"
    assert outcomes(rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=SEEDS,
                               max_episode_steps=limit)) == expected


# == 2. determinism ===========================================================================


@pytest.mark.parametrize("kind", TARGETS)
def test_random_sample_per_seed_returns_match_gymnasium(serve: Any, closing: Any,
                                                        kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    expected = random_loop(SEEDS)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=SEEDS)
    assert outcomes(result) == expected
    assert [e.seed for e in result.episodes] == SEEDS
    assert [e.index for e in result.episodes] == list(range(len(SEEDS)))
    assert {e.endpoint for e in result.episodes} == {endpoint}
    assert result.settings["policy"] == "random"
    assert result.settings["env"] == (endpoint or result.settings["env"])
    assert result.episodes[0].reward == result.episodes[3].reward  # seed 7 twice
    assert all(e.duration_s > 0 for e in result.episodes)
    # Model.run is the same thing, and a second run repeats the first.
    assert outcomes(rlmesh.RANDOM_SAMPLE.run(env, seeds=SEEDS)) == expected
    assert rlmesh.RANDOM_SAMPLE.action_space is None  # the shared baseline is not bound


def test_random_sample_rebinds_for_every_env(closing: Any) -> None:
    """The shared baseline samples each env's own action space (CartPole, then Pendulum)."""
    rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), seeds=[1])
    actions: list[Any] = []

    class Actions(rlmesh.Hooks):
        def on_step(self, index: int, step: int, action: Any, *rest: Any) -> None:
            actions.append(action)

    pendulum = closing(gym.make("Pendulum-v1"))
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, pendulum, seeds=[1], max_episode_steps=20,
                        hooks=Actions())
    assert result.episodes[0].steps == 20
    assert all(isinstance(a, np.ndarray) and a.shape == (1,) for a in actions)
    expected = hand_loop([1], lambda o, s: s.sample(), max_steps=20,
                         make=lambda: gym.make("Pendulum-v1"))
    assert outcomes(result) == expected


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("model_class", [NumpyModel, rlmesh.Model], ids=["numpy", "plain"])
def test_deterministic_policy_matches_hand_loop(serve: Any, closing: Any, kind: str,
                                                model_class: type[NumpyModel]) -> None:
    env, _ = make_target(kind, serve, closing)
    result = rlmesh.run(model_class(angle_policy), env, seeds=SEEDS[:6])
    assert outcomes(result) == angle_loop(SEEDS[:6])
    assert result.settings["policy"] == "angle_policy"


def test_more_lanes_than_episodes(serve: Any, closing: Any) -> None:
    """Idle lanes do not disturb the episodes (2 episodes on 3 lanes, local and remote)."""
    for kind in VECTOR_TARGETS:
        env, _ = make_target(kind, serve, closing)
        result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[4, 8])
        assert outcomes(result) == random_loop([4, 8])
        assert outcomes(rlmesh.run(rlmesh.RANDOM_SAMPLE, env)) != []  # default: 1 episode


# == 4. success from the final info ===========================================================




@pytest.mark.parametrize("key", ["is_success", "success"])
@pytest.mark.parametrize("kind", ["local", "remote", "remote-plain", "sync-vector",
                                  "vector-endpoint", "fleet"])
def test_success_from_final_info(serve: Any, closing: Any, kind: str, key: str) -> None:
    env, _ = make_target(kind, serve, closing, make=lambda: SuccessEnv(key))
    seeds = [0, 1, 2, 3, 4]
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=seeds)
    assert [(e.steps, e.success) for e in result.episodes] == \
        [(3, True), (4, False), (5, True), (3, False), (4, True)]
    assert all(type(e.success) is bool for e in result.episodes)
    assert result.success_rate == pytest.approx(3 / 5)
    assert result.summary()["success_rate"] == pytest.approx(3 / 5)


@pytest.mark.parametrize("kind", ["local", "remote", "sync-vector"])
def test_success_is_none_when_not_reported(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing, make=lambda: SuccessEnv(None))
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0, 1, 2])
    assert [e.success for e in result.episodes] == [None, None, None]
    assert result.success_rate is None
    cart = rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), seeds=[0])
    assert cart.episodes[0].success is None and cart.success_rate is None


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_success_on_every_autoreset_mode(closing: Any, mode: AutoresetMode) -> None:
    """Under SAME_STEP the final info is ``infos['final_info']``: success is read from it."""
    env = closing(SyncVectorEnv([SuccessEnv] * 2, autoreset_mode=mode))
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0, 1, 2, 3, 4])
    assert [e.steps for e in result.episodes] == [3, 4, 5, 3, 4]
    cart = closing(SyncVectorEnv([cartpole] * 3, autoreset_mode=mode))
    assert outcomes(rlmesh.run(rlmesh.RANDOM_SAMPLE, cart, seeds=SEEDS)) == random_loop(SEEDS)
    assert [e.success for e in result.episodes] == [True, False, True, False, True]


# == 6. interruption ==========================================================================


@pytest.mark.parametrize("kind", ["local", "address", "sync-vector"])
def test_keyboard_interrupt_returns_finished_episodes(serve: Any, closing: Any,
                                                      kind: str) -> None:
    """Ctrl+C (KeyboardInterrupt) once seed 3's episode started returns the finished ones."""
    if kind == "local":
        env: Any = closing(cartpole())
    elif kind == "address":
        env = serve(cartpole()).address  # one instance: a leaked connection would block it
    else:
        env = closing(SyncVectorEnv([cartpole] * 3))  # seed 3 starts when a lane frees up

    class Interrupt(Lifecycle):
        def predict(self, observation: Any) -> Any:
            if ("reset", 3) in self.log:
                raise KeyboardInterrupt
            return super().predict(observation)

    seeds = [7, 0, 42, 3, 8]
    model, hook = Interrupt(), Recorder()
    try:
        result = rlmesh.run(model, env, seeds=seeds, hooks=hook)
    except KeyboardInterrupt:  # pragma: no cover - the failure this test looks for
        pytest.fail("KeyboardInterrupt escaped rlmesh.run")
    assert result.interrupted and not result.complete
    assert result.planned == 5
    finished = [e.index for e in result.episodes]
    if kind == "sync-vector":
        assert finished == sorted(finished) and finished and set(finished) <= {0, 1, 2}
    else:
        assert finished == [0, 1, 2]
    expected = angle_loop(seeds)
    assert outcomes(result) == [expected[i] for i in finished]
    assert model.log[-1] == ("close",) and model.log.count(("close",)) == 1
    assert hook.calls[-1] == ("run_end", result)
    if kind == "address":
        assert_endpoint_free(env)


# == 7. env ownership =========================================================================


def test_run_closes_what_it_opened_and_only_that(serve: Any, closing: Any) -> None:
    address = serve(cartpole()).address  # one instance: a second client would be refused
    assert rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[1]).num_episodes == 1
    assert_endpoint_free(address)  # run closed its connection
    env = closing(connect(address))
    rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[1])
    env.reset(seed=1)  # still open: the caller owns it
    with pytest.raises(rlmesh.EnvBusyError):
        connect(address)


def test_run_on_an_unreachable_address_raises(closing: Any) -> None:
    from tests.support.net import free_port

    with pytest.raises(rlmesh.ConnectFailedError):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, f"127.0.0.1:{free_port()}")




def test_this_module_runs_over_the_memory_transport(serve: Any) -> None:
    """The module's servers are in-process peers (``memory_peer``), and runs work over them."""
    address = serve(cartpole).address
    assert address.startswith("memory://")
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[1, 2])
    assert outcomes(result) == random_loop([1, 2])
    assert {e.endpoint for e in result.episodes} == {address}
