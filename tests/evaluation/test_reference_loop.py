"""The reference rlmesh's evaluation loop, from its docs: ``Session``, the model lifecycle
(episode-end ``reset``, ``on_episode_end`` / ``on_close``, ``load(**binding)``), the predict
``context``, ``RunHooks`` / ``StepEvent``, and the new ``run`` options.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from tests.support.deps import need
from tests.support.runs import angle_loop, angle_policy, cartpole, outcomes

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


class TwoObs(gym.Env[np.ndarray, int]):
    """A two-element observation: ``obs, info = reset()`` must not split it."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        return np.array([0.25, -0.5], np.float32), {"k": 1}

    def step(self, action: int) -> Any:
        return np.zeros(2, np.float32), 1.0, True, False, {"is_success": True}


# == Session =====================================================================================


def test_session_reset_returns_obs_and_info_like_gymnasium() -> None:
    with rlmesh.session(rlmesh.numpy.Model(lambda o: 0), TwoObs()) as sess:
        assert isinstance(sess, rlmesh.Session)
        obs, info = sess.reset(seed=0)
        assert obs.shape == (2,) and info == {"k": 1}  # the observation is whole
        while not sess.done:
            obs, reward, terminated, truncated, info = sess.step(sess.predict(obs))
        assert (reward, terminated, truncated) == (1.0, True, False)
        assert sess.episodes[0].succeeded and sess.episodes[0].success is True


def test_session_connects_lazily_and_refuses_calls_once_closed(serve: Any) -> None:
    server = serve(cartpole)
    sess = rlmesh.session(rlmesh.RANDOM_SAMPLE, server.address)
    assert server.stats["sessions"] == 0, "the session connected before it was used"
    obs, _ = sess.reset(seed=1)
    assert server.stats["sessions"] == 1 and obs.shape == (4,)
    sess.close()
    sess.close()  # idempotent
    with pytest.raises(rlmesh.EnvClosedError):
        sess.reset(seed=2)
    with pytest.raises(rlmesh.EnvClosedError):
        sess.step(0)
    never_used = rlmesh.session(rlmesh.RANDOM_SAMPLE, server.address)
    never_used.close()
    assert server.stats["sessions"] == 1  # closing an unused session connects nothing


def test_model_session_and_run_plays_episodes_like_rlmesh_run() -> None:
    model = rlmesh.numpy.Model(angle_policy)
    with model.session(cartpole()) as sess:
        result = sess.run(seeds=[3, 4])
    assert outcomes(result) == angle_loop([3, 4])
    assert outcomes(model.run(env_or_address=cartpole(), seeds=[3, 4])) == angle_loop([3, 4])
    with pytest.raises(TypeError, match="once"):
        model.run(cartpole(), env_or_address=cartpole())


def test_session_caps_episodes_and_closes_a_passed_env_only_when_asked() -> None:
    env = cartpole()
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, env, max_episode_steps=5) as sess:
        result = sess.run(seeds=[0])
    assert result.episodes[0].steps == 5 and result.episodes[0].truncated
    env.reset(seed=0)  # still usable: passed in, not closed
    closed = []
    env.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, env, close_env=True) as sess:
        sess.run(seeds=[0])
    assert closed == [True]


def test_session_reads_need_tags_and_view_is_checked() -> None:
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, cartpole()) as sess:
        obs, _ = sess.reset(seed=0)
        with pytest.raises(rlmesh.errors.AdapterResolutionError, match="no adapter tags"):
            sess.read(obs, "image/primary")
        with pytest.raises(ValueError, match="no adapter tags"):
            sess.reader("image/primary")
    with pytest.raises(ValueError, match="view"):
        rlmesh.session(rlmesh.RANDOM_SAMPLE, cartpole(), view="window")


# == the model lifecycle ==========================================================================


class EndResetting(rlmesh.numpy.Model):
    """A model written for the reference: ``reset()`` clears state when an episode ends."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []
        self.memory: list[Any] = []

    def load(self, **binding: Any) -> None:
        self.log.append(("load", binding))

    def predict(self, observation: Any) -> Any:
        self.memory.append(observation)
        return angle_policy(observation)

    def reset(self) -> None:
        self.log.append(("reset", len(self.memory)))
        self.memory.clear()

    def close(self) -> None:
        self.log.append(("close",))


def test_reference_style_reset_fires_at_each_episode_end() -> None:
    model = EndResetting()
    result = rlmesh.run(model, cartpole(), seeds=[1, 2, 3])
    steps = [e.steps for e in result.episodes]
    assert model.log == [("load", {}), ("reset", steps[0]), ("reset", steps[1]),
                         ("reset", steps[2]), ("close",)]
    assert outcomes(result) == angle_loop([1, 2, 3])


def test_on_episode_end_and_on_close_replace_reset_and_close() -> None:
    ended: list[str] = []
    closes: list[bool] = []
    model = rlmesh.numpy.Model(angle_policy, on_episode_end=ended.append,
                               on_close=lambda: closes.append(True))
    with rlmesh.session(model, cartpole()) as sess:
        sess.run(seeds=[5, 6])
        sess.reset(seed=7)  # ends nothing unfinished twice: the third episode is open
    assert len(ended) == 3 and len(set(ended)) == 3, ended  # one distinct id per episode
    assert closes == [True]


def test_rlmesh_style_reset_still_fires_at_the_start_with_the_seed() -> None:
    seeds: list[Any] = []

    class Ours(rlmesh.numpy.Model):
        def reset(self, seed: int | None = None) -> None:
            seeds.append(seed)

    rlmesh.run(Ours(angle_policy), cartpole(), seeds=[8, 9])
    assert seeds == [8, 9]


def test_model_takes_its_predict_as_source_or_keyword_not_both() -> None:
    assert rlmesh.numpy.Model(source=angle_policy).predict(np.zeros(4)) == 0
    assert rlmesh.numpy.Model(predict=angle_policy).predict(np.ones(4)) == 1
    with pytest.raises(TypeError, match="once"):
        rlmesh.numpy.Model(angle_policy, predict=angle_policy)
    with pytest.raises(TypeError, match="on_close must be callable"):
        rlmesh.numpy.Model(angle_policy, on_close=3)  # type: ignore[arg-type]
    spec = object()
    assert rlmesh.numpy.Model(angle_policy, spec=spec).spec is spec
    assert rlmesh.numpy.Model(angle_policy, trust_entrypoints=True).trust_entrypoints


# == the predict context ==========================================================================


def test_a_predict_that_declares_context_gets_one_per_call() -> None:
    seen: list[dict[str, Any]] = []

    def policy(observation: Any, context: dict[str, Any]) -> int:
        seen.append(dict(context, state=dict(context["state"])))
        context["state"]["calls"] = context["state"].get("calls", 0) + 1
        return angle_policy(observation)

    result = rlmesh.run(rlmesh.numpy.Model(policy), cartpole(), seeds=[11, 11])
    first, second = result.episodes
    assert len(seen) == first.steps + second.steps
    one = seen[: first.steps]
    assert [c["predict_index"] for c in one] == list(range(first.steps))
    assert {c["episode_seed"] for c in one} == {11}
    assert one[-1]["state"] == {"calls": first.steps - 1}  # the state lives for the episode
    two = seen[first.steps :]
    assert two[0]["state"] == {} and two[0]["episode_id"] != one[0]["episode_id"]
    # The per-predict seed is reproducible: the same seed and index give the same value.
    assert [c["predict_seed"] for c in two] == [c["predict_seed"] for c in one[: len(two)]]
    assert len({c["predict_seed"] for c in one}) == len(one)


def test_a_subclass_predict_with_context_is_handed_one() -> None:
    class WithContext(rlmesh.numpy.Model):
        def predict(self, observation: Any, context: Any = None) -> int:
            assert context is not None and context["episode_seed"] == 4
            return angle_policy(observation)

    assert outcomes(rlmesh.run(WithContext(), cartpole(), seeds=[4])) == angle_loop([4])


# == RunHooks and the results ====================================================================


class Recording(rlmesh.RunHooks):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_run_start(self) -> None:
        self.events.append("start")

    def on_episode_start(self, index: int, seed: int | None) -> None:
        self.events.append(("episode", index, seed))

    def on_step(self, event: rlmesh.StepEvent) -> None:
        self.events.append(event)

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.events.append(("end", result.index))

    def on_run_end(self, episodes: tuple[rlmesh.EpisodeResult, ...]) -> None:
        self.events.append(("run end", len(episodes)))


@pytest.mark.parametrize("driver", ["run", "session"])
def test_run_hooks_see_every_step_in_order(driver: str) -> None:
    hooks = Recording()
    model = rlmesh.numpy.Model(angle_policy)
    if driver == "run":
        result = rlmesh.run(model, cartpole(), seeds=[2, 3], hooks=[hooks, rlmesh.Hooks()])
    else:
        with rlmesh.session(model, cartpole(), hooks=hooks) as sess:
            result = sess.run(seeds=[2, 3])
    steps = [e for e in hooks.events if isinstance(e, rlmesh.StepEvent)]
    assert len(steps) == sum(e.steps for e in result.episodes)
    assert hooks.events[0] == "start" and hooks.events[1] == ("episode", 0, 2)
    assert hooks.events[-1] == ("run end", 2)
    ends = [e for e in hooks.events if isinstance(e, tuple) and e[0] == "end"]
    assert ends == [("end", 0), ("end", 1)]
    assert steps[0].seed == 2 and steps[-1].seed == 3
    last = steps[result.episodes[0].steps - 1]
    assert last.done and last.step == result.episodes[0].steps and last.episode == 0
    # Each step is timed, and the steps' times add up to the episode's.
    assert all(e.predict_ms is not None and e.step_ms is not None and e.predict_ms >= 0
               and e.step_ms >= 0 for e in steps)
    first = steps[: result.episodes[0].steps]
    assert sum(e.predict_ms for e in first) == pytest.approx(result.episodes[0].predict_ms)
    assert sum(e.step_ms for e in first) == pytest.approx(result.episodes[0].step_ms)


def test_episode_results_time_predict_and_step() -> None:
    result = rlmesh.run(rlmesh.numpy.Model(angle_policy), cartpole(), seeds=[0])
    episode = result.episodes[0]
    assert episode.predict_ms > 0 and episode.step_ms > 0
    assert episode.predict_ms + episode.step_ms <= episode.duration_s * 1000 + 1
    assert episode.succeeded is False  # CartPole reports no success
    assert rlmesh.EpisodeResult.from_dict(episode.to_dict()) == episode


def test_run_options_of_the_reference() -> None:
    env = cartpole()
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0], max_episode_seconds=1e-9)
    assert result.episodes[0].steps == 1 and result.episodes[0].truncated
    with pytest.warns(rlmesh.RLMeshWarning, match="chunk"):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0], execution_horizon=4)
    with pytest.raises(ValueError, match="execution_horizon"):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, env, execution_horizon=0)
    with pytest.raises(TypeError, match="view"):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, env, view=3)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0], instruction="balance")
    assert result.settings["instruction"] == "balance"
    closed: list[bool] = []
    env.close = lambda: closed.append(True)  # type: ignore[method-assign]
    rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0])
    assert closed == []
    rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0], close_env=True)
    assert closed == [True]


# == the four predict corners ====================================================================


class Chunker(rlmesh.numpy.Model):
    """Emits chunks of the same action (the angle policy's), as long as asked or native 5."""

    def __init__(self, takes_horizon: bool) -> None:
        super().__init__()
        self.calls: list[int | None] = []
        if takes_horizon:
            self.predict_chunk = self._with_horizon  # type: ignore[method-assign]

    def predict_chunk(self, observation: Any) -> Any:
        self.calls.append(None)
        return np.full(5, angle_policy(observation))

    def _with_horizon(self, observation: Any, execution_horizon: int = 1) -> Any:
        self.calls.append(execution_horizon)
        return np.full(execution_horizon, angle_policy(observation))


def test_chunks_are_replayed_one_action_per_step_and_dropped_at_reset() -> None:
    model = Chunker(takes_horizon=False)
    result = rlmesh.run(model, cartpole(), seeds=[0, 1], execution_horizon=3)
    expected = sum(-(-e.steps // 3) for e in result.episodes)  # a new chunk every 3 steps
    assert len(model.calls) == expected, (len(model.calls), expected)
    # Horizon 1 (the default): every step predicts, taking each chunk's first action.
    model = Chunker(takes_horizon=False)
    assert outcomes(rlmesh.run(model, cartpole(), seeds=[0])) == angle_loop([0])
    assert len(model.calls) == angle_loop([0])[0][0]


def test_a_chunk_corner_that_declares_the_horizon_receives_it() -> None:
    model = Chunker(takes_horizon=True)
    with model.session(cartpole(), execution_horizon=4) as sess:
        sess.run(seeds=[2])
    assert set(model.calls) == {4}


class BatchChunker(rlmesh.numpy.Model):
    """Only ``predict_chunk_batch``: every other corner derives from it."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def predict_chunk_batch(self, observations: Any) -> Any:
        self.shapes.append(observations.shape)
        actions = (observations[:, 2] > 0).astype(np.int64)  # [N]
        return np.repeat(actions[:, None], 2, axis=1)  # [N, 2]


def test_predict_chunk_batch_alone_gives_all_four_corners() -> None:
    model = BatchChunker()
    assert outcomes(rlmesh.run(model, cartpole(), seeds=[3])) == angle_loop([3])
    assert set(model.shapes) == {(1, 4)}  # predict: a batch of one
    lanes = rlmesh.run(model, gym.vector.SyncVectorEnv([cartpole] * 2), seeds=[3, 4])
    assert outcomes(lanes) == angle_loop([3, 4])
    assert (2, 4) in model.shapes  # predict_batch: one forward over both lanes
    assert model.predict_chunk(np.zeros(4, np.float32)).shape == (2,)


def test_predict_batch_alone_serves_single_observations() -> None:
    class Batched(rlmesh.numpy.Model):
        def predict_batch(self, observations: Any) -> Any:
            return (observations[:, 2] > 0).astype(np.int64)

    assert outcomes(rlmesh.run(Batched(), cartpole(), seeds=[5])) == angle_loop([5])


def test_corner_errors_are_clear() -> None:
    class Nothing(rlmesh.numpy.Model):
        pass

    with pytest.raises(NotImplementedError, match="predict_chunk"):
        rlmesh.run(Nothing(), cartpole(), seeds=[0])

    class Empty(rlmesh.numpy.Model):
        def predict_chunk(self, observation: Any) -> Any:
            return np.zeros(0, np.int64)

    with pytest.raises(ValueError, match="empty action chunk"):
        rlmesh.run(Empty(), cartpole(), seeds=[0], execution_horizon=2)
    with pytest.warns(rlmesh.RLMeshWarning, match="chunk corner"):
        rlmesh.run(rlmesh.numpy.Model(angle_policy), cartpole(), seeds=[0], execution_horizon=2)


def test_a_plain_model_replays_list_chunks() -> None:
    class PlainChunks(rlmesh.Model):
        def predict_chunk(self, observation: Any) -> Any:
            return [int(observation[2] > 0)] * 3

    result = rlmesh.run(PlainChunks(), cartpole(), seeds=[6], execution_horizon=3)
    assert result.episodes[0].steps > 3


# == model attributes =============================================================================


def test_device_is_for_torch_and_jax_models_and_read_at_predict_time() -> None:
    model = rlmesh.numpy.Model(angle_policy)
    assert model.device is None and model.params is None
    with pytest.raises(ValueError, match="no device"):
        model.device = "cuda"
    model.device = None  # (clearing it is fine)
    torch_face = need("rlmesh.torch")

    seen: list[Any] = []

    class OnCpu(torch_face.Model):  # type: ignore[misc, name-defined]
        def load(self, **binding: Any) -> None:
            self.device = "cpu"  # set where the weights would move

        def predict(self, observation: Any) -> Any:
            seen.append(observation.device.type)
            return int(observation[2] > 0)

    assert outcomes(rlmesh.run(OnCpu(), cartpole(), seeds=[1])) == angle_loop([1])
    assert set(seen) == {"cpu"}
