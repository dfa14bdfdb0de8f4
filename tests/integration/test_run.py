"""``rlmesh.Model``, ``rlmesh.run``, ``rlmesh.session``, ``rlmesh.Hooks`` and the run results.

Every run is checked against a hand-written Gymnasium loop driven by the same seeds and
actions: locally, through a ``RemoteEnv``, an address, local and remote vector envs (lanes)
and a ``RemoteVectorEnv`` over several single-env endpoints. Servers are real, in-process,
on 127.0.0.1 port 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh.backends.plain import PlainModel
from rlmesh.models.model import Model as NumpyModel
from tests.helpers import Outcome, close_after, hand_loop

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

SEEDS = [7, 0, 42, 7, 3, 1234, 5, 99, 11, 2]
"""Reset seeds, with a repeat (the same seed must give the same episode twice)."""

@pytest.fixture
def closing(serve: Any) -> Iterator[Callable[[Any], Any]]:
    """Close clients and local envs after the test (before the servers shut down)."""
    yield from close_after()


def cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")


def angle_policy(observation: Any) -> int:
    """Push right when the pole leans right (works on lists and arrays)."""
    return int(observation[2] > 0)


def angle_batch(observations: Any) -> Any:
    return np.array([angle_policy(o) for o in observations], dtype=np.int64)


def random_loop(seeds: Sequence[int], **kwargs: Any) -> list[Outcome]:
    return hand_loop(seeds, lambda observation, sampler: sampler.sample(), **kwargs)


def angle_loop(seeds: Sequence[int], **kwargs: Any) -> list[Outcome]:
    return hand_loop(seeds, lambda observation, sampler: angle_policy(observation), **kwargs)


def outcomes(result: rlmesh.RunResult) -> list[Outcome]:
    return [(e.steps, e.reward, e.terminated, e.truncated) for e in result.episodes]


def connect(address: str) -> rlmesh.numpy.RemoteEnv:
    return rlmesh.numpy.RemoteEnv(address, connect_timeout=5, timeout=10)


def connect_vec(address: str | Sequence[str]) -> rlmesh.numpy.RemoteVectorEnv:
    return rlmesh.numpy.RemoteVectorEnv(address, connect_timeout=5, timeout=10)


TARGETS = ["local", "remote", "remote-plain", "address", "sync-vector", "vector-endpoint",
           "vector-address", "fleet"]
VECTOR_TARGETS = ["sync-vector", "vector-endpoint", "fleet"]


def make_target(kind: str, serve: Any, closing: Any,
                make: Callable[[], gym.Env[Any, Any]] = cartpole) -> tuple[Any, str | None]:
    """An env (or address) of the given kind, and the endpoint its episodes should name."""
    if kind == "local":
        return closing(make()), None
    if kind == "sync-vector":
        return closing(SyncVectorEnv([make] * 3)), None
    if kind in ("remote", "remote-plain", "address"):
        address = serve(make).address
        if kind == "address":
            return address, address
        cls = rlmesh.numpy.RemoteEnv if kind == "remote" else rlmesh.RemoteEnv
        return closing(cls(address, connect_timeout=5, timeout=10)), address
    if kind in ("vector-endpoint", "vector-address"):
        address = serve(lambda: SyncVectorEnv([make] * 3)).address
        if kind == "vector-address":
            return address, address
        return closing(connect_vec(address)), address
    if kind == "fleet":
        addresses = [serve(make).address for _ in range(2)]
        return closing(connect_vec(addresses)), ",".join(addresses)
    raise AssertionError(kind)


def assert_endpoint_free(address: str) -> None:
    """An instance endpoint takes a new client: the previous connection was closed."""
    with rlmesh.numpy.RemoteEnv(address, connect_timeout=5, timeout=10) as env:
        env.reset(seed=0)


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


# == 3. models ================================================================================


class Counting(NumpyModel):
    """Counts predict and predict_batch calls and records what they received."""

    def __init__(self, *, batch: bool, plain: bool = False) -> None:
        super().__init__(angle_policy, predict_batch=self.record_batch if batch else None,
                         name="counting")
        self.plain = plain
        self.single: list[Any] = []
        self.batches: list[Any] = []

    def predict(self, observation: Any) -> Any:
        self.single.append(observation)
        return super().predict(observation)

    def record_batch(self, observations: Any) -> Any:
        self.batches.append(observations)
        return angle_batch(observations)


@pytest.mark.parametrize("kind", VECTOR_TARGETS)
def test_predict_batch_is_used_for_vector_envs(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Counting(batch=True)
    assert model.batched
    result = rlmesh.run(model, env, seeds=SEEDS[:5])
    assert outcomes(result) == angle_loop(SEEDS[:5])
    assert model.single == []
    longest = max(e.steps for e in result.episodes)
    # one call per vector step: at least the longest episode, at most all steps
    assert longest <= len(model.batches) <= result.total_steps
    assert all(isinstance(b, np.ndarray) and b.shape == (env.num_envs, 4) for b in model.batches)
    # Without predict_batch every active lane calls predict once per step.
    per_lane = Counting(batch=False)
    assert not per_lane.batched
    result = rlmesh.run(per_lane, env, seeds=SEEDS[:5])
    assert outcomes(result) == angle_loop(SEEDS[:5])
    assert per_lane.batches == []
    assert len(per_lane.single) == result.total_steps


@pytest.mark.parametrize("kind", ["local", "remote", "address"])
def test_predict_batch_is_not_used_for_single_envs(serve: Any, closing: Any,
                                                   kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Counting(batch=True)
    result = rlmesh.run(model, env, seeds=SEEDS[:3])
    assert outcomes(result) == angle_loop(SEEDS[:3])
    assert model.batches == []
    assert len(model.single) == result.total_steps


def test_overridden_predict_batch_counts_as_batched(closing: Any) -> None:
    calls: list[int] = []

    class Batched(NumpyModel):
        def predict(self, observation: Any) -> Any:
            raise AssertionError("predict must not be called on lanes")

        def predict_batch(self, observations: Any) -> Any:
            calls.append(len(observations))
            return angle_batch(observations)

    model = Batched()
    assert model.batched
    result = rlmesh.run(model, closing(SyncVectorEnv([cartpole] * 3)), seeds=SEEDS[:4])
    assert outcomes(result) == angle_loop(SEEDS[:4])
    assert calls and set(calls) == {3}
    # The default predict_batch loops over predict.
    plain = NumpyModel(angle_policy)
    assert plain.predict_batch(np.array([[0, 0, 0.1, 0], [0, 0, -0.1, 0]])).tolist() == [1, 0]


@pytest.mark.parametrize("kind", ["local", "remote", "sync-vector", "vector-endpoint", "fleet"])
@pytest.mark.parametrize("batch", [False, True], ids=["per-lane", "batch"])
def test_plain_model_sees_lists_numpy_model_sees_arrays(serve: Any, closing: Any, kind: str,
                                                        batch: bool) -> None:
    env, _ = make_target(kind, serve, closing)
    vector = kind in VECTOR_TARGETS
    for plain in (True, False):
        model = Counting(batch=batch, plain=plain)
        result = rlmesh.run(model, env, seeds=SEEDS[:3])
        assert outcomes(result) == angle_loop(SEEDS[:3])
        seen = model.batches if batch and vector else model.single
        assert seen
        for value in seen:
            if plain:
                assert type(value) is list
                rows = value if batch and vector else [value]
                assert all(type(r) is list and all(type(x) is float for x in r) for r in rows)
            else:
                assert isinstance(value, np.ndarray)
                assert value.dtype == np.float32
                assert value.shape == ((env.num_envs, 4) if batch and vector else (4,))


def test_model_classes_are_exported() -> None:
    assert rlmesh.Model is PlainModel and rlmesh.Model.plain
    assert rlmesh.numpy.Model is NumpyModel and not rlmesh.numpy.Model.plain
    assert issubclass(rlmesh.Model, rlmesh.numpy.Model)
    assert isinstance(rlmesh.RANDOM_SAMPLE, rlmesh.numpy.Model)
    with pytest.raises(TypeError, match="callable"):
        rlmesh.Model("not a function")  # type: ignore[arg-type]
    assert rlmesh.Model(angle_policy).name == "angle_policy"
    assert rlmesh.Model(angle_policy, name="mine").name == "mine"


def test_plain_model_may_return_plain_box_actions(closing: Any) -> None:
    """A plain model's list actions are converted to the action space (Pendulum float32)."""
    env = closing(gym.make("Pendulum-v1"))
    result = rlmesh.run(rlmesh.Model(lambda observation: [0.5]), env, seeds=[3, 4],
                        max_episode_steps=30)
    expected = hand_loop([3, 4], lambda o, s: np.array([0.5], np.float32), max_steps=30,
                         make=lambda: gym.make("Pendulum-v1"))
    assert outcomes(result) == expected


def test_plain_model_batch_actions_are_converted_like_single_actions(closing: Any) -> None:
    """Plain batch actions (float lists) get the float32 dtype, as single actions do."""
    def make() -> gym.Env[Any, Any]:
        return gym.make("Pendulum-v1")

    expected = hand_loop([3, 4], lambda o, s: np.array([0.5], np.float32), max_steps=30,
                         make=make)
    env = closing(SyncVectorEnv([make] * 2))
    per_lane = rlmesh.Model(lambda observation: [0.5])
    assert outcomes(rlmesh.run(per_lane, env, seeds=[3, 4], max_episode_steps=30)) == expected
    batched = rlmesh.Model(lambda observation: [0.5],
                           predict_batch=lambda observations: [[0.5]] * len(observations))
    assert outcomes(rlmesh.run(batched, env, seeds=[3, 4], max_episode_steps=30)) == expected


class Lifecycle(NumpyModel):
    """Records load/reset/predict/close in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []

    def load(self) -> None:
        assert self.action_space is not None and self.observation_space is not None
        self.log.append(("load", self.action_space))

    def reset(self, seed: int | None = None) -> None:
        self.log.append(("reset", seed))

    def predict(self, observation: Any) -> Any:
        self.log.append("predict")
        return angle_policy(observation)

    def close(self) -> None:
        self.log.append(("close",))


@pytest.mark.parametrize("kind", ["local", "address", "sync-vector", "vector-endpoint"])
def test_model_load_reset_close_hooks(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Lifecycle()
    seeds = SEEDS[:5]
    result = rlmesh.run(model, env, seeds=seeds)
    assert outcomes(result) == angle_loop(seeds)
    log = model.log
    assert log[0] == ("load", gym.spaces.Discrete(2))  # the single-env space, also for lanes
    assert log[-1] == ("close",)
    assert log.count(("close",)) == 1 and sum(e[0] == "load" for e in log if e != "predict") == 1
    resets = [e[1] for e in log if isinstance(e, tuple) and e[0] == "reset"]
    if kind in [*VECTOR_TARGETS, "vector-endpoint"]:
        assert sorted(resets) == sorted(seeds)  # lanes start episodes as they free up
        assert resets[:3] == seeds[:3]
    else:
        assert resets == seeds
        # every episode: reset, then exactly its steps' predictions
        chunks: list[int] = []
        for entry in log[1:-1]:
            if entry == "predict":
                chunks[-1] += 1
            else:
                chunks.append(0)
        assert chunks == [e.steps for e in result.episodes]
    assert log.count("predict") == result.total_steps
    assert model.name == "Lifecycle" and result.settings["policy"] == "Lifecycle"


def test_model_without_predict_raises_clearly(closing: Any) -> None:
    bare = NumpyModel()
    with pytest.raises(NotImplementedError, match=r"no predict.*override predict"):
        rlmesh.run(bare, closing(cartpole()), seeds=[0])

    class NoPredict(rlmesh.Model):
        def __init__(self) -> None:
            super().__init__()
            self.closed = 0

        def close(self) -> None:
            self.closed += 1

    broken = NoPredict()
    with pytest.raises(NotImplementedError, match="NoPredict has no predict"):
        rlmesh.run(broken, closing(cartpole()), seeds=[0])
    assert broken.closed == 1  # closed despite the error
    with pytest.raises(NotImplementedError):
        rlmesh.run(NoPredict(), closing(SyncVectorEnv([cartpole] * 2)), seeds=[0])


def test_subclass_with_per_episode_state(closing: Any) -> None:
    """A model overriding ``episode`` gets a fresh closure per episode, with its seed."""

    def alternating(seed: int) -> Callable[[Any], int]:
        state = [seed % 2]

        def act(observation: Any) -> int:
            state[0] += 1
            return state[0] % 2

        return act

    class Alternate(NumpyModel):
        def episode(self, seed: int | None) -> Callable[[Any], Any]:
            return alternating(seed or 0)

    expected = []
    for seed in SEEDS[:4]:
        act = alternating(seed)
        expected += hand_loop([seed], lambda observation, sampler, act=act: act(observation))
    for env in (closing(cartpole()), closing(SyncVectorEnv([cartpole] * 2))):
        assert outcomes(rlmesh.run(Alternate(), env, seeds=SEEDS[:4])) == expected


# == 4. success from the final info ===========================================================


class SuccessEnv(gym.Env[int, int]):
    """Episodes of ``3 + seed % 3`` steps; the final info says success iff the seed is even.

    Earlier steps always report success, so only the final info may count.
    """

    observation_space = gym.spaces.Discrete(16)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, key: str | None = "is_success") -> None:
        self.key = key
        self.seed_value = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.seed_value, self.t = seed or 0, 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        done = self.t >= 3 + self.seed_value % 3
        info: dict[str, Any] = {}
        if self.key is not None:
            info[self.key] = np.bool_(self.seed_value % 2 == 0) if done else True
        return self.t, 1.0, done, False, info


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


# == 5. rlmesh.Hooks ==========================================================================


class Recorder(rlmesh.Hooks):
    """Logs every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.observations: dict[int, list[Any]] = {}

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        self.calls.append(("start", index, seed, endpoint))
        self.observations[index] = [observation]

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.calls.append(("step", index, step, int(action), reward, terminated, truncated))
        self.observations[index].append(observation)

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.calls.append(("end", result.index, result))

    def on_run_end(self, result: rlmesh.RunResult) -> None:
        self.calls.append(("run_end", result))


@pytest.mark.parametrize("kind", ["local", "address"])
def test_hooks_order_and_counts_single_env(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    first, second = Recorder(), Recorder()
    seeds = [5, 6, 7]
    result = rlmesh.run(rlmesh.Model(angle_policy), env, seeds=seeds, hooks=[first, second])
    assert first.calls == second.calls  # both called, each with everything
    expected: list[tuple[Any, ...]] = []
    for episode, seed in zip(result.episodes, seeds, strict=True):
        expected.append(("start", episode.index, seed, endpoint))
        seen = first.observations[episode.index]
        assert len(seen) == episode.steps + 1
        for step in range(1, episode.steps + 1):
            last = step == episode.steps
            expected.append(("step", episode.index, step, angle_policy(seen[step - 1]), 1.0,
                             last and episode.terminated, last and episode.truncated))
        expected.append(("end", episode.index, episode))
    expected.append(("run_end", result))
    assert first.calls == expected
    assert first.calls[-1][1] is result
    assert [c[2] for c in first.calls if c[0] == "end"] == result.episodes
    assert outcomes(result) == angle_loop(seeds)


@pytest.mark.parametrize("kind", ["sync-vector", "vector-endpoint", "fleet"])
def test_hooks_order_and_counts_on_lanes(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    hook = Recorder()
    seeds = SEEDS[:5]
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=seeds, hooks=hook)
    assert outcomes(result) == random_loop(seeds)
    kinds = [c[0] for c in hook.calls]
    assert kinds.count("start") == kinds.count("end") == 5
    assert kinds.count("step") == result.total_steps
    assert kinds.count("run_end") == 1 and kinds[-1] == "run_end"
    for episode in result.episodes:
        mine = [c for c in hook.calls if c[0] != "run_end" and c[1] == episode.index]
        assert mine[0] == ("start", episode.index, episode.seed, endpoint)
        assert [c[2] for c in mine[1:-1]] == list(range(1, episode.steps + 1))
        assert mine[-1] == ("end", episode.index, episode)


def test_hooks_must_be_hooks(closing: Any) -> None:
    with pytest.raises(TypeError, match=r"rlmesh\.Hooks"):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), hooks=[object()])  # type: ignore[list-item]


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
    from tests.helpers import free_port

    with pytest.raises(rlmesh.ConnectFailedError):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, f"127.0.0.1:{free_port()}")


# == 8. rlmesh.session ========================================================================


@pytest.mark.parametrize("kind", ["local", "remote", "address"])
def test_session_drives_episodes_by_hand(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    model = Lifecycle()
    with rlmesh.session(model, env) as s:
        assert isinstance(s, rlmesh.EpisodeSession)
        assert model.log == [("load", gym.spaces.Discrete(2))]
        assert s.done and s.episodes == []
        observation = s.reset(seed=7)
        assert not s.done
        assert isinstance(observation, np.ndarray) and observation.shape == (4,)
        assert model.log[-1] == ("reset", 7)
        steps = 0
        while not s.done:  # explicit predict, then step with that action
            action = s.predict()
            assert action == angle_policy(s.observation)
            assert s.predict(s.observation) == action
            _, reward, terminated, truncated, info = s.step(action)
            assert type(reward) is float and isinstance(info, dict)
            steps += 1
        assert terminated or truncated
        s.reset(seed=0)
        while not s.done:  # the model's action
            s.step()
        assert [(e.index, e.seed) for e in s.episodes] == [(0, 7), (1, 0)]
        assert outcomes(s.result()) == angle_loop([7, 0])
        assert s.episodes[0].steps == steps
        assert {e.endpoint for e in s.episodes} == {endpoint}
        result = s.result()
        assert result.planned == 2 and result.complete
        assert result.settings["policy"] == "Lifecycle"
        with pytest.raises(RuntimeError, match="reset"):
            s.step()
        with pytest.raises(RuntimeError, match="reset"):
            s.predict()
    assert model.log.count(("close",)) == 1 and model.log[-1] == ("close",)
    s.close()  # idempotent
    assert model.log.count(("close",)) == 1
    assert [e[1] for e in model.log if isinstance(e, tuple) and e[0] == "reset"] == [7, 0]


def test_session_step_without_action_uses_the_model(closing: Any) -> None:
    model = Counting(batch=False)
    s = rlmesh.session(model, closing(cartpole()))
    s.reset(seed=3)
    while not s.done:
        s.step()
    assert len(model.single) == s.episodes[0].steps
    assert outcomes(s.result()) == angle_loop([3])
    # An explicit action is taken as given: always push left.
    s.reset(seed=3)
    while not s.done:
        s.step(0)
    assert len(model.single) == s.episodes[0].steps  # the model was not asked
    assert outcomes(s.result())[1] == hand_loop([3], lambda o, sampler: 0)[0]
    s.close()


def test_session_random_sample_matches_run(serve: Any, closing: Any) -> None:
    address = serve(cartpole).address
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, address) as s:
        for seed in SEEDS[:4]:
            s.reset(seed=seed)
            while not s.done:
                s.step()
    assert outcomes(s.result()) == random_loop(SEEDS[:4])
    with rlmesh.session(rlmesh.Model(angle_policy), address) as s:  # plain model, numpy env
        s.reset(seed=1)
        assert type(s.predict()) is int
        while not s.done:
            s.step()
    assert outcomes(s.result()) == angle_loop([1])


def test_session_step_before_reset_raises(closing: Any) -> None:
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, closing(cartpole())) as s:
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.step()
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.step(0)
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.predict()
        assert s.episodes == []


def test_session_on_an_address_closes_its_connection(serve: Any) -> None:
    address = serve(cartpole()).address  # one instance
    s = rlmesh.session(rlmesh.RANDOM_SAMPLE, address)
    s.reset(seed=0)
    with pytest.raises(rlmesh.EnvBusyError):
        connect(address)
    s.close()
    assert_endpoint_free(address)


def test_session_refuses_vector_envs(serve: Any, closing: Any) -> None:
    with pytest.raises(TypeError, match="single env"):
        rlmesh.session(rlmesh.RANDOM_SAMPLE, closing(SyncVectorEnv([cartpole] * 2)))
    vector = serve(SyncVectorEnv([cartpole] * 2)).address  # one instance
    with pytest.raises(TypeError, match="single env"):
        rlmesh.session(rlmesh.RANDOM_SAMPLE, vector)
    closing(connect_vec(vector)).reset(seed=0)  # the refused session let go of the endpoint
    with pytest.raises(TypeError, match="single env"):
        rlmesh.session(rlmesh.RANDOM_SAMPLE, closing(connect_vec([serve(cartpole).address])))


# == 9. RunResult =============================================================================


def run_with_everything(serve: Any) -> rlmesh.RunResult:
    """A remote run with success flags, seeds, a limit, an endpoint, and events added."""
    address = serve(lambda: SuccessEnv("is_success")).address
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[0, 1, 2, 3, None],
                        max_episode_steps=4)
    result.events.append({"kind": "endpoint_failed", "endpoint": address,
                          "message": "ConnectionLostError: gone", "episode": 2, "time": 1.5})
    result.events.append({"kind": "incomplete", "endpoint": None, "message": "x",
                          "episode": None, "time": 2.0})
    return result


def test_run_result_dict_and_json_round_trip(serve: Any) -> None:
    result = run_with_everything(serve)
    assert [e.truncated for e in result.episodes] == [False, False, True, False, False]
    data = result.to_dict()
    assert data["format"] == "rlmesh.run/1"
    assert data["summary"]["num_episodes"] == 5 and data["summary"]["events"] == 2
    back = rlmesh.RunResult.from_dict(json.loads(json.dumps(data)))
    assert back == result
    assert back.to_dict() == data
    assert [type(e) for e in back.episodes] == [rlmesh.EpisodeResult] * 5
    for mine, theirs in zip(back.episodes, result.episodes, strict=True):
        assert mine.to_dict() == theirs.to_dict()
        assert type(mine.reward) is float and type(mine.steps) is int
    interrupted = rlmesh.RunResult(episodes=result.episodes[:2], settings={"a": [1, None]},
                                   events=result.events, interrupted=True, planned=5)
    again = rlmesh.RunResult.from_dict(json.loads(json.dumps(interrupted.to_dict())))
    assert again == interrupted and not again.complete and again.planned == 5
    # EpisodeResult ignores keys it does not know (a newer writer's)
    one = rlmesh.EpisodeResult.from_dict({**result.episodes[0].to_dict(), "extra": 1})
    assert one == result.episodes[0]


def test_run_result_save_and_load(serve: Any, tmp_path: Any) -> None:
    result = run_with_everything(serve)
    path = tmp_path / "run.json"
    path.write_text("old contents")
    result.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left
    assert json.loads(path.read_text())["format"] == "rlmesh.run/1"
    loaded = rlmesh.RunResult.load(path)
    assert loaded == result
    assert loaded.events == result.events and loaded.settings == result.settings
    loaded.save(str(path))  # a str path too; saving the loaded run changes nothing
    assert rlmesh.RunResult.load(str(path)) == result


@pytest.mark.parametrize("data", [
    {}, {"format": "rlmesh.run/2", "episodes": []}, {"episodes": [], "settings": {}},
    [], "rlmesh.run/1", None, {"format": None},
], ids=["empty", "other-version", "no-format", "list", "str", "none", "null-format"])
def test_from_dict_rejects_foreign_data(data: Any, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="not an rlmesh run"):
        rlmesh.RunResult.from_dict(data)
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not an rlmesh run"):
        rlmesh.RunResult.load(path)


def episode(index: int, reward: float, steps: int = 10, success: bool | None = None,
            endpoint: str | None = None) -> rlmesh.EpisodeResult:
    return rlmesh.EpisodeResult(index, index, steps, reward, True, False, success, 0.1,
                                endpoint)


def test_run_result_statistics() -> None:
    result = rlmesh.RunResult(episodes=[
        episode(0, 1.0, 10, True), episode(1, 2.0, 20, False), episode(2, 3.0, 30, None),
        episode(3, 6.0, 40, True)], planned=4)
    assert result.num_episodes == 4 and result.complete
    assert result.rewards == [1.0, 2.0, 3.0, 6.0]
    assert result.mean_reward == 3.0
    assert result.std_reward == pytest.approx(math.sqrt((4 + 1 + 0 + 9) / 4))
    assert result.mean_steps == 25.0 and result.total_steps == 100
    assert result.success_rate == pytest.approx(2 / 3)  # among those that report
    summary = result.summary()
    assert summary == {"num_episodes": 4, "planned": 4, "mean_reward": 3.0,
                       "std_reward": result.std_reward, "mean_steps": 25.0,
                       "success_rate": result.success_rate, "total_steps": 100,
                       "interrupted": False, "events": 0}
    empty = rlmesh.RunResult(planned=3)
    assert empty.num_episodes == 0 and not empty.complete
    assert math.isnan(empty.mean_reward) and math.isnan(empty.std_reward)
    assert math.isnan(empty.mean_steps)
    assert empty.success_rate is None and empty.total_steps == 0
    assert empty.summary()["mean_reward"] is None  # JSON has no nan
    json.dumps(empty.to_dict(), allow_nan=False)
    assert rlmesh.RunResult.from_dict(empty.to_dict()) == empty
    assert rlmesh.RunResult(episodes=[episode(0, 5.0)]).std_reward == 0.0
    none_known = rlmesh.RunResult(episodes=[episode(0, 1.0), episode(1, 1.0)])
    assert none_known.success_rate is None
    assert rlmesh.RunResult(episodes=[episode(0, 1.0, success=False)]).success_rate == 0.0


def test_run_result_by_endpoint() -> None:
    episodes = [episode(0, 1.0, endpoint="a:1"), episode(1, 2.0, endpoint="b:2"),
                episode(2, 3.0), episode(3, 4.0, endpoint="a:1"), episode(4, 5.0)]
    groups = rlmesh.RunResult(episodes=episodes, planned=5).by_endpoint()
    assert list(groups) == ["a:1", "b:2", "local"]
    assert groups == {"a:1": [episodes[0], episodes[3]], "b:2": [episodes[1]],
                      "local": [episodes[2], episodes[4]]}
    assert rlmesh.RunResult().by_endpoint() == {}


def test_real_run_by_endpoint(serve: Any, closing: Any) -> None:
    local = rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), seeds=[1, 2])
    assert list(local.by_endpoint()) == ["local"]
    address = serve(cartpole).address
    remote = rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[1, 2])
    assert remote.by_endpoint() == {address: remote.episodes}
