"""``rlmesh.evaluate``: planned episodes spread over many endpoints at once.

Endpoints are real servers on 127.0.0.1 port 0: ``rlmesh serve`` child processes (they can be
SIGKILLed mid-run) or in-process ``EnvServer`` threads. Every per-seed result is checked
against a hand-written Gymnasium loop with the same seeds and actions, so results must not
depend on which endpoint ran an episode, on timing, or on failures.
"""

from __future__ import annotations

import _thread
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh.testing import ServerProcess
from tests.support.episodes import Outcome, hand_loop
from tests.support.net import free_port
from tests.support.slow_env import SLOW_MODULE, slow_env_environment

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def child_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for ``rlmesh serve`` children that can import the slow env module."""
    return slow_env_environment(tmp_path_factory.mktemp("slow-env"))


@pytest.fixture
def spawn_many(spawn: Callable[..., ServerProcess], child_env: dict[str, str]
               ) -> Callable[..., list[ServerProcess]]:
    """Start ``count`` slow-CartPole endpoints at once (children, reaped after the test)."""

    def start(count: int, delay: float = 0.015, extra_args: Sequence[str] = ()
              ) -> list[ServerProcess]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(
                lambda _: spawn(f"{SLOW_MODULE}:SlowCartPole", kwargs={"delay": delay},
                                env=child_env, extra_args=list(extra_args)),
                range(count)))

    return start


@pytest.fixture
def eval_threads() -> Iterator[None]:
    """Wait for the endpoint threads ``evaluate`` left running (an interrupted run)."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("rlmesh-eval-"):
            thread.join(10)


def random_loop(seeds: Sequence[int], max_steps: int | None = None) -> list[Outcome]:
    """CartPole episodes by hand: reset with the seed, actions from a copy seeded with it."""
    return hand_loop(seeds, lambda observation, sampler: sampler.sample(), max_steps=max_steps)


def angle_policy(observation: Any) -> int:
    return int(observation[2] > 0)


def outcomes(result: rlmesh.RunResult) -> list[Outcome]:
    return [(e.steps, e.reward, e.terminated, e.truncated) for e in result.episodes]


def assert_each_once(result: rlmesh.RunResult, indices: Sequence[int]) -> None:
    assert [e.index for e in result.episodes] == list(indices)


def kinds(result: rlmesh.RunResult) -> list[str]:
    return [e["kind"] for e in result.events]


class Recorder(rlmesh.Hooks):
    """Logs hook calls; checks they never overlap (evaluate holds a lock around them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.busy = False

    def _log(self, *call: Any) -> None:
        assert not self.busy, "hook calls overlapped"
        self.busy = True
        time.sleep(0)  # let another thread try to come in
        self.calls.append(call)
        self.busy = False

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        self._log("start", index, seed, endpoint)

    def on_step(self, index: int, step: int, *rest: Any) -> None:
        self._log("step", index, step)

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self._log("end", result.index, result.endpoint)

    def on_run_end(self, result: rlmesh.RunResult) -> None:
        self._log("run_end", result)


class Lifecycle(rlmesh.numpy.Model):
    """The angle policy, logging load/reset/close (thread-safe: list appends)."""

    def __init__(self) -> None:
        super().__init__(angle_policy, name="angle")
        self.log: list[Any] = []

    def load(self) -> None:
        self.log.append(("load", self.action_space))

    def reset(self, seed: int | None = None) -> None:
        self.log.append(("reset", seed))

    def predict(self, observation: Any) -> Any:
        if self.log and self.log[-1] == ("close",):
            self.log.append("predict after close")
        return super().predict(observation)

    def close(self) -> None:
        self.log.append(("close",))


# == 1. many endpoints give the same results as one ===========================================


def test_three_endpoints_match_one(spawn_many: Callable[..., list[ServerProcess]]) -> None:
    procs = spawn_many(3, delay=0.001)
    addresses = [p.address for p in procs]
    seeds = list(range(1000, 1030))
    one = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses[:1], seeds=seeds)
    three = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=seeds)
    expected = random_loop(seeds)
    assert outcomes(one) == expected
    assert outcomes(three) == expected
    for result in (one, three):
        assert_each_once(result, range(30))
        assert [e.seed for e in result.episodes] == seeds
        assert result.complete and result.events == [] and result.planned == 30
        assert {e.attempts for e in result.episodes} == {1}
        assert result.settings["seeds"] == seeds and result.settings["policy"] == "random"
        assert result.settings["wall_s"] > 0
    assert three.settings["endpoints"] == addresses
    assert set(three.by_endpoint()) == set(addresses), "every endpoint played episodes"
    assert set(one.by_endpoint()) == {addresses[0]}
    assert three.mean_reward == one.mean_reward and three.std_reward == one.std_reward


def test_seed_and_seeds_forms(serve: Any) -> None:
    addresses = [serve(lambda: gym.make("CartPole-v1")).address for _ in range(2)]
    by_seed = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seed=100, episodes=6)
    by_seeds = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=range(100, 106))
    assert by_seed.settings["seeds"] == by_seeds.settings["seeds"] == list(range(100, 106))
    assert outcomes(by_seed) == outcomes(by_seeds) == random_loop(range(100, 106))
    assert_each_once(by_seed, range(6))
    # counts: episodes, else len(seeds), else 1
    assert rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seed=5).settings["seeds"] == [5]
    unseeded = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses[0])  # one address as a str
    assert unseeded.num_episodes == 1 and unseeded.episodes[0].seed is None
    capped = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=[9, 8, 7, 6], episodes=2)
    assert [e.seed for e in capped.episodes] == [9, 8]
    with pytest.raises(ValueError, match="seeds or seed"):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=[1], seed=1)
    with pytest.raises(ValueError, match="only 2 seeds"):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=[1, 2], episodes=3)
    with pytest.raises(ValueError, match="at least one address"):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [], episodes=1)


def test_vector_endpoint_mixed_with_single_endpoints(serve: Any) -> None:
    def make() -> gym.Env[Any, Any]:
        return gym.make("CartPole-v1")

    vector = serve(lambda: SyncVectorEnv([make] * 3)).address
    singles = [serve(make).address for _ in range(2)]
    seeds = list(range(40, 64))
    for addresses in ([vector, *singles], [*singles, vector], [vector]):
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=seeds)
        assert outcomes(result) == random_loop(seeds), addresses
        assert_each_once(result, range(len(seeds)))
        assert result.complete and result.events == []
        assert set(result.by_endpoint()) <= set(addresses)
    only_vector = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, vector, seeds=seeds[:2])  # idle lane
    assert outcomes(only_vector) == random_loop(seeds[:2])


@pytest.mark.parametrize("policy", [
    pytest.param(lambda: angle_policy, id="callable"),
    pytest.param(lambda: rlmesh.Model(angle_policy), id="plain-model"),
    pytest.param(Lifecycle, id="numpy-model"),
])
def test_deterministic_policy_and_model_lifecycle(serve: Any, policy: Callable[[], Any]
                                                  ) -> None:
    def make() -> gym.Env[Any, Any]:
        return gym.make("CartPole-v1")

    addresses = [serve(make).address, serve(make).address,
                 serve(lambda: SyncVectorEnv([make] * 2)).address]
    seeds = list(range(10))
    model = policy()
    result = rlmesh.evaluate(model, addresses, seeds=seeds, max_episode_steps=40)
    assert outcomes(result) == hand_loop(seeds, lambda o, s: angle_policy(o), max_steps=40)
    assert any(e.truncated and e.steps == 40 for e in result.episodes), "pick longer episodes"
    assert result.settings["max_episode_steps"] == 40
    if isinstance(model, Lifecycle):
        log = model.log
        assert log[0] == ("load", gym.spaces.Discrete(2)) and log[-1] == ("close",)
        assert log.count(("close",)) == 1 and "predict after close" not in log
        assert sorted(e[1] for e in log if e[0] == "reset") == seeds


def test_hooks_under_evaluate(serve: Any) -> None:
    addresses = [serve(lambda: gym.make("CartPole-v1")).address for _ in range(3)]
    hook, other = Recorder(), Recorder()
    seeds = list(range(12))
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=seeds, hooks=[hook, other])
    assert outcomes(result) == random_loop(seeds)
    names = [c[0] for c in hook.calls]
    assert names.count("start") == names.count("end") == 12
    assert names.count("step") == result.total_steps
    assert names.count("run_end") == 1 and hook.calls[-1] == ("run_end", result)
    assert len(other.calls) == len(hook.calls)
    for episode in result.episodes:
        mine = [c for c in hook.calls[:-1] if c[1] == episode.index]
        assert mine[0] == ("start", episode.index, episode.seed, episode.endpoint)
        assert [c[2] for c in mine[1:-1]] == list(range(1, episode.steps + 1))
        assert mine[-1] == ("end", episode.index, episode.endpoint)


# == 2. unreachable and failing endpoints =====================================================


def test_no_reachable_endpoint_fails_after_connect_timeout() -> None:
    dead = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    started = time.monotonic()
    with pytest.raises(rlmesh.ConnectFailedError) as info:
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, dead, episodes=3, connect_timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 3  # (refused connections are retried)
    assert all(address in str(info.value) for address in dead)


def test_an_unreachable_endpoint_among_live_ones(serve: Any) -> None:
    dead = f"127.0.0.1:{free_port()}"
    live = [serve(lambda: gym.make("CartPole-v1")).address for _ in range(2)]
    seeds = list(range(8))
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [dead, *live], seeds=seeds)
    assert outcomes(result) == random_loop(seeds)
    assert result.complete
    assert set(result.by_endpoint()) <= set(live)
    assert {e["endpoint"] for e in result.events} == {dead}
    assert "endpoint_down" in kinds(result)


def test_endpoint_killed_mid_run_loses_nothing(spawn_many: Callable[..., list[ServerProcess]],
                                               tmp_path: Path) -> None:
    procs = spawn_many(3)
    by_address = {p.address: p for p in procs}
    seeds = list(range(200, 212))

    class KillOne(rlmesh.Hooks):
        """After two episodes ended, pick the endpoint that starts the next one."""

        def __init__(self) -> None:
            self.ended = 0
            self.target: tuple[str, int] | None = None
            self.chosen = threading.Event()

        def on_episode_start(self, index: int, seed: int | None, observation: Any,
                             info: dict[str, Any], endpoint: str | None) -> None:
            if self.ended >= 2 and self.target is None and endpoint is not None:
                self.target = (endpoint, index)
                self.chosen.set()

        def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
            self.ended += 1

    hook = KillOne()

    def killer() -> None:
        if hook.chosen.wait(20) and hook.target is not None:
            os.kill(by_address[hook.target[0]].pid, signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, list(by_address), seeds=seeds, hooks=hook)
    thread.join(5)
    assert hook.target is not None, "the run ended before an endpoint could be killed"
    killed, index = hook.target
    assert by_address[killed].process.wait(5) == -signal.SIGKILL
    assert time.monotonic() - started < 20
    assert_each_once(result, range(12))
    assert outcomes(result) == random_loop(seeds)
    assert result.complete and not result.interrupted
    failed = [e for e in result.events if e["kind"] == "endpoint_failed"]
    assert [(e["endpoint"], e["episode"]) for e in failed] == [(killed, index)]
    assert str(index) in failed[0]["message"]
    assert {e["endpoint"] for e in result.events} == {killed}
    rerun = result.episodes[index]
    assert rerun.attempts == 2 and rerun.endpoint != killed
    assert all(e.attempts == 1 for e in result.episodes if e.index != index)
    # The events survive a save and a load.
    path = tmp_path / "run.json"
    result.save(path)
    loaded = rlmesh.RunResult.load(path)
    assert loaded == result and loaded.events == result.events


def test_all_endpoints_dead_returns_what_finished(
        spawn_many: Callable[..., list[ServerProcess]]) -> None:
    procs = spawn_many(3)
    seeds = list(range(300, 312))

    class KillAll(rlmesh.Hooks):
        def __init__(self) -> None:
            self.ended = 0
            self.go = threading.Event()

        def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
            self.ended += 1
            if self.ended == 2:
                self.go.set()

    hook = KillAll()

    def killer() -> None:
        if hook.go.wait(20):
            for proc in procs:
                os.kill(proc.pid, signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    # No endpoint comes back: the run waits reconnect_timeout for one, then returns.
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [p.address for p in procs], seeds=seeds,
                             hooks=hook, reconnect_timeout=1.0)
    thread.join(5)
    assert hook.go.is_set()
    assert time.monotonic() - started < 10, "no hang once every endpoint is gone"
    assert not result.complete and not result.interrupted and result.planned == 12
    finished = [e.index for e in result.episodes]
    assert 2 <= len(finished) < 12 and finished == sorted(set(finished))
    expected = random_loop(seeds)
    assert outcomes(result) == [expected[i] for i in finished]
    assert kinds(result)[-1] == "incomplete"
    incomplete = result.events[-1]
    assert str(12 - len(finished)) in incomplete["message"]
    for proc in procs:
        assert proc.address in {e["endpoint"] for e in result.events}
    assert {"endpoint_failed", "endpoint_down"} <= set(kinds(result))
    data = json.loads(json.dumps(result.to_dict()))
    assert rlmesh.RunResult.from_dict(data) == result


class ExplodesOnSeed(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose step raises in episodes reset with seed 13."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.bad = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.bad = kwargs.get("seed") == 13
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        if self.bad:
            raise RuntimeError("boom on seed 13")
        return self.env.step(action)


def test_an_episode_that_always_fails_is_given_up(serve: Any) -> None:
    addresses = [serve(ExplodesOnSeed).address for _ in range(2)]
    seeds = [10, 11, 12, 13, 14, 15]
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=seeds, max_attempts=3)
    assert_each_once(result, [0, 1, 2, 4, 5])
    expected = random_loop(seeds)
    assert outcomes(result) == [expected[i] for i in (0, 1, 2, 4, 5)]
    assert not result.complete
    assert kinds(result).count("episode_error") == 3
    given_up = [e for e in result.events if e["kind"] == "episode_failed"]
    assert len(given_up) == 1 and given_up[0]["episode"] == 3
    assert "boom on seed 13" in given_up[0]["message"]


class PolicyBug(Exception):
    """What the buggy policies below raise (a type no rlmesh code raises)."""


class BuggyAfter(Lifecycle):
    """The angle policy for ``calls`` calls (over all threads), then a bug."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls
        self.lock = threading.Lock()

    def predict(self, observation: Any) -> Any:
        with self.lock:
            self.left -= 1
            if self.left < 0:
                raise PolicyBug("the policy divided by zero")
        return super().predict(observation)


@pytest.mark.parametrize("vector", [False, True], ids=["single-endpoints", "with-vector"])
def test_a_bug_in_the_policy_stops_the_run_and_is_raised(serve: Any, vector: bool,
                                                         eval_threads: None) -> None:
    def make() -> gym.Env[Any, Any]:
        return gym.make("CartPole-v1")

    addresses = [serve(make).address, serve(make).address]
    if vector:
        addresses.append(serve(lambda: SyncVectorEnv([make] * 2)).address)
    model = BuggyAfter(30)
    started = time.monotonic()
    with pytest.raises(PolicyBug, match="divided by zero"):
        rlmesh.evaluate(model, addresses, seeds=list(range(50)), max_attempts=5)
    assert time.monotonic() - started < 10, "the run went on after the bug"
    assert model.log[-1] == ("close",) and model.log.count(("close",)) == 1
    for thread in threading.enumerate():  # the endpoints' threads have all stopped
        if thread.name.startswith("rlmesh-eval-"):
            thread.join(5)
            assert not thread.is_alive(), thread.name
    again = rlmesh.evaluate(angle_policy, addresses, seeds=[1, 2, 3])  # the servers go on
    assert again.complete and outcomes(again) == hand_loop(
        [1, 2, 3], lambda o, s: angle_policy(o))


def test_a_bug_in_a_hook_stops_the_run_and_is_raised(serve: Any, eval_threads: None) -> None:
    class Broken(rlmesh.Hooks):
        def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
            if result.index == 2:
                raise PolicyBug("the hook failed on episode 2")

    addresses = [serve(lambda: gym.make("CartPole-v1")).address for _ in range(2)]
    with pytest.raises(PolicyBug, match="episode 2"):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seeds=list(range(8)), hooks=Broken())


def test_a_served_model_error_is_raised_not_retried(serve: Any) -> None:
    def broken(observation: Any) -> int:
        if observation[2] > 0.05:
            raise ValueError("the served model cannot act on this")
        return angle_policy(observation)

    addresses = [serve(lambda: gym.make("CartPole-v1")).address for _ in range(2)]
    served = rlmesh.numpy.Model(broken).serve("127.0.0.1:0", block=False)
    try:
        with rlmesh.RemoteModel(served.address) as remote:
            with pytest.raises(rlmesh.RemoteModelError, match="cannot act on this") as info:
                rlmesh.evaluate(remote, addresses, seeds=list(range(6)), max_attempts=3)
            assert info.value.remote_type == "ValueError"
    finally:
        served.shutdown()


# == 3. Ctrl+C ================================================================================


class InterruptAfter(rlmesh.Hooks):
    """Sends the main thread a KeyboardInterrupt when the second episode ends."""

    def __init__(self) -> None:
        self.ended = 0
        self.calls: list[str] = []

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.ended += 1
        self.calls.append("end")
        if self.ended == 2:
            _thread.interrupt_main()

    def on_run_end(self, result: rlmesh.RunResult) -> None:
        self.calls.append("run_end")


def interrupted_run(addresses: list[str], model: Any, hook: rlmesh.Hooks
                    ) -> tuple[rlmesh.RunResult, float]:
    started = time.monotonic()
    try:
        result = rlmesh.evaluate(model, addresses, seeds=list(range(500, 530)), hooks=hook)
    except KeyboardInterrupt:  # pragma: no cover - the failure these tests look for
        pytest.fail("KeyboardInterrupt escaped rlmesh.evaluate")
    return result, time.monotonic() - started


@pytest.mark.skipif(sys.platform == "win32", reason="interrupt_main delivery differs")
def test_ctrl_c_returns_the_finished_episodes(
        spawn_many: Callable[..., list[ServerProcess]], eval_threads: None) -> None:
    procs = spawn_many(3)
    hook = InterruptAfter()
    result, elapsed = interrupted_run([p.address for p in procs], rlmesh.RANDOM_SAMPLE, hook)
    finished = [e.index for e in result.episodes]
    assert result.interrupted and not result.complete and result.planned == 30
    assert elapsed < 5, "30 episodes of ~0.3 s on 3 endpoints would take longer"
    assert len(finished) >= 2 and len(set(finished)) == len(finished)
    expected = random_loop(list(range(500, 530)))
    assert sorted(outcomes(result)) == sorted(expected[i] for i in finished)
    assert "run_end" in hook.calls


def test_ctrl_c_result_is_final_when_returned(
        spawn_many: Callable[..., list[ServerProcess]], eval_threads: None) -> None:
    procs = spawn_many(3)
    hook, model = InterruptAfter(), Lifecycle()
    result, _ = interrupted_run([p.address for p in procs], model, hook)
    assert result.interrupted
    returned = [e.index for e in result.episodes]
    time.sleep(1.5)  # the episodes in flight at Ctrl+C have ended by now
    assert [e.index for e in result.episodes] == returned
    assert hook.calls[-1] == "run_end"
    assert "predict after close" not in model.log


# == 4. authentication ========================================================================


def test_evaluate_with_a_token(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMESH_TOKEN", raising=False)
    token = "eval-test-token"
    addresses = [serve(lambda: gym.make("CartPole-v1"), token=token).address for _ in range(2)]
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, addresses, seed=0, episodes=4, token=token)
    assert outcomes(result) == random_loop(range(4))
    assert result.complete


def test_evaluate_without_the_token_is_refused(serve: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMESH_TOKEN", raising=False)
    address = serve(lambda: gym.make("CartPole-v1"), token="secret").address
    with pytest.raises(rlmesh.ConnectFailedError, match="token"):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, address, episodes=1)
