"""A RemoteEnv behaves exactly like the env it serves: Gymnasium's checker, trajectories, render.

Every comparison here is strict: same Python type, same numpy dtype and shape, same bytes.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlmesh.envs import CounterEnv, DictObsEnv, TupleObsEnv
from rlmesh.numpy import RemoteEnv
from tests.support.deps import need
from tests.support.spaces import assert_space_identical
from tests.support.values import assert_same

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

ENV_MODULES = ("gymnasium.envs.classic_control", "gymnasium.envs.toy_text")


# -- helpers ----------------------------------------------------------------------------------


def connect(server: Any, connect_timeout: float = 5) -> RemoteEnv:
    """A numpy client of ``server`` (an in-process ``serve`` or a child ``spawn`` server)."""
    return RemoteEnv(server.address, connect_timeout=connect_timeout, timeout=10)


def lockstep(
    remote: gym.Env[Any, Any],
    local: gym.Env[Any, Any],
    *,
    action_seed: int = 1234,
    first_seed: int = 42,
    min_episodes: int = 2,
    min_steps: int = 300,
    episode_cap: int = 250,
    max_steps: int = 2500,
) -> tuple[int, int]:
    """Drive both envs with the same seeds and actions; compare every returned value.

    Even-numbered episodes reset with a fresh seed, odd ones with ``seed=None`` (so the env's
    RNG must carry over identically). An episode ends when the env says so, or after
    ``episode_cap`` steps (some envs, like CliffWalking, have no time limit). Returns
    ``(episodes, steps)``.
    """
    sampler = copy.deepcopy(local.action_space)
    sampler.seed(action_seed)
    episodes = steps = 0
    while True:
        seed = first_seed + episodes if episodes % 2 == 0 else None
        r_obs, r_info = remote.reset(seed=seed)
        l_obs, l_info = local.reset(seed=seed)
        where = f"episode {episodes} reset(seed={seed})"
        assert_same(r_obs, l_obs, f"{where} obs")
        assert_same(r_info, l_info, f"{where} info")
        episode_steps = 0
        while True:
            action = sampler.sample()
            r_step = remote.step(action)
            l_step = local.step(action)
            steps += 1
            episode_steps += 1
            where = f"episode {episodes} step {steps} action {action!r}"
            assert len(r_step) == 5
            for name, r, val in zip(("obs", "reward", "terminated", "truncated", "info"),
                                    r_step, l_step, strict=True):
                assert_same(r, val, f"{where} {name}")
            if l_step[2] or l_step[3] or episode_steps >= episode_cap or steps >= max_steps:
                break
        episodes += 1
        if (episodes >= min_episodes and steps >= min_steps) or steps >= max_steps:
            return episodes, steps


def _entry_point_module(spec: gym.envs.registration.EnvSpec) -> str:
    entry = spec.entry_point
    if isinstance(entry, str):
        return entry.partition(":")[0]
    return getattr(entry, "__module__", "") or ""


def registered_ids() -> list[str]:
    """Every env registered by Gymnasium's classic_control and toy_text packages."""
    return sorted(
        env_id
        for env_id, spec in gym.registry.items()
        if _entry_point_module(spec).startswith(ENV_MODULES)
    )


def _warnings_of(fn: Callable[[], Any]) -> tuple[set[tuple[type[Warning], str]], Any]:
    """Run ``fn`` recording every warning; return ``({(category, message)}, exception)``."""
    error: BaseException | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except Exception as exc:
            error = exc
    return {(w.category, str(w.message)) for w in caught}, error


# -- (a) Gymnasium's env checker ------------------------------------------------------------

CHECK_TARGETS: dict[str, Callable[[], Any]] = {
    "CartPole-v1": lambda: gym.make("CartPole-v1"),
    "Pendulum-v1": lambda: gym.make("Pendulum-v1"),
    "rlmesh.envs:DictObsEnv": DictObsEnv,
    "rlmesh.envs:TupleObsEnv": TupleObsEnv,
}
# Registered envs declare a "human" render mode, which check_env would open locally with
# pygame; rendering is compared separately below, so the checker's render part is skipped
# for them (on both sides alike).
SKIP_RENDER = {"CartPole-v1", "Pendulum-v1"}


def _check_remote_against_local(target: str, remote: RemoteEnv, **check_kwargs: Any) -> None:
    with CHECK_TARGETS[target]() as local:
        local_warnings, local_error = _warnings_of(lambda: check_env(local, **check_kwargs))
    assert local_error is None, f"check_env fails on the local {target}: {local_error!r}"
    remote_warnings, remote_error = _warnings_of(lambda: check_env(remote, **check_kwargs))
    if remote_error is not None:
        raise AssertionError(
            f"check_env({check_kwargs}) raised on RemoteEnv({target}) but not on the local "
            f"env: {remote_error!r}"
        ) from remote_error
    extra = remote_warnings - local_warnings
    assert not extra, f"warnings only the RemoteEnv triggers: {sorted(m for _, m in extra)}"


@pytest.mark.parametrize("target", list(CHECK_TARGETS))
def test_check_env_passes_on_remote_env(spawn: Callable[..., Any], target: str) -> None:
    with connect(spawn(target), connect_timeout=10) as remote:
        _check_remote_against_local(target, remote, skip_render_check=target in SKIP_RENDER)


@pytest.mark.parametrize("target", list(CHECK_TARGETS))
def test_check_env_api_checks_pass_on_remote_env(spawn: Callable[..., Any],
                                                 target: str) -> None:
    """The spec-independent part of check_env: spaces, reset, step, determinism, no reuse."""
    with connect(spawn(target), connect_timeout=10) as remote:
        _check_remote_against_local(target, remote, skip_render_check=True,
                                    skip_close_check=True)


def test_check_env_passes_with_rgb_array_rendering(spawn: Callable[..., Any]) -> None:
    server = spawn("rlmesh.envs:DictObsEnv", kwargs={"render_mode": "rgb_array"})
    with connect(server, connect_timeout=10) as remote:
        assert remote.render_mode == "rgb_array"
        local = DictObsEnv(render_mode="rgb_array")
        local_warnings, local_error = _warnings_of(lambda: check_env(local))
        assert local_error is None
        remote_warnings, remote_error = _warnings_of(lambda: check_env(remote))
        assert remote_error is None, repr(remote_error)
        assert remote_warnings <= local_warnings, remote_warnings - local_warnings


# -- (b) trajectories identical to the local env ----------------------------------------------


def test_discovery_finds_every_classic_control_and_toy_text_family() -> None:
    ids = registered_ids()
    names = {gym.envs.registration.parse_env_id(i)[1] for i in ids}
    expected = {"CartPole", "MountainCar", "MountainCarContinuous", "Pendulum", "Acrobot",
                "FrozenLake", "FrozenLake8x8", "CliffWalking", "Taxi", "Blackjack"}
    assert expected <= names, f"missing from the registry scan: {expected - names}"


@pytest.mark.parametrize("env_id", registered_ids())
def test_trajectory_matches_local_env(serve: Callable[..., Any], env_id: str) -> None:
    with connect(serve(lambda: gym.make(env_id))) as remote, gym.make(env_id) as local:
        episodes, steps = lockstep(remote, local)
    assert episodes >= 2
    assert steps >= 300


def test_trajectory_matches_local_env_across_processes(spawn: Callable[..., Any]) -> None:
    with (connect(spawn("CartPole-v1"), connect_timeout=10) as remote,
          gym.make("CartPole-v1") as local):
        episodes, steps = lockstep(remote, local, action_seed=7, first_seed=2024,
                                   min_episodes=3)
    assert episodes >= 3
    assert steps >= 300


@pytest.mark.parametrize("env_cls", [DictObsEnv, TupleObsEnv])
def test_structured_observations_match_local_env(serve: Callable[..., Any],
                                                 env_cls: Callable[[], Any]) -> None:
    with connect(serve(env_cls)) as remote, env_cls() as local:
        episodes, _ = lockstep(remote, local, min_steps=100)
    assert episodes >= 2


def test_returned_arrays_are_owned_and_writable(serve: Callable[..., Any]) -> None:
    with connect(serve(lambda: gym.make("CartPole-v1"))) as remote:
        obs0, _ = remote.reset(seed=0)
        obs1, *_ = remote.step(0)
        before = obs0.copy()
        assert obs0.flags.writeable and obs1.flags.writeable
        obs1[:] = 99.0
        assert obs0.tobytes() == before.tobytes()


# -- (c) render, render_mode, metadata, spec --------------------------------------------------


@contextlib.contextmanager
def served_and_local(serve: Callable[..., Any], make: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> Iterator[tuple[RemoteEnv, Any]]:
    """A client of a served ``make(*args, **kwargs)`` and a second, local one; both closed after."""
    with make(*args, **kwargs) as local, connect(serve(make(*args, **kwargs))) as remote:
        yield remote, local


def test_contract_exposes_render_mode_metadata_and_spec(serve: Callable[..., Any]) -> None:
    with served_and_local(serve, gym.make, "CartPole-v1",
                          render_mode="rgb_array") as (remote, local):
        assert remote.render_mode == "rgb_array"
        # A client cannot switch the served env's render mode, so only the served one is
        # advertised; the rest of the metadata is the served env's.
        assert remote.metadata["render_modes"] == ["rgb_array"]
        assert {k: v for k, v in remote.metadata.items() if k != "render_modes"} == {
            k: v for k, v in local.metadata.items() if k != "render_modes"}
        assert remote.metadata["render_fps"] == 50
        assert remote.spec is not None
        assert remote.spec.id == "CartPole-v1"
        assert remote.spec.max_episode_steps == 500
        assert remote.spec.reward_threshold == local.spec.reward_threshold
        assert_space_identical(remote.observation_space, local.observation_space)
        assert_space_identical(remote.action_space, local.action_space)


def test_custom_env_without_spec_has_no_spec(serve: Callable[..., Any]) -> None:
    with connect(serve(CounterEnv())) as remote:
        assert remote.spec is None
        assert remote.render_mode is None
        assert remote.metadata == {"render_modes": []}


def test_cartpole_rgb_array_frames_match_local(serve: Callable[..., Any]) -> None:
    need("pygame")  # CartPole's rgb_array render needs pygame (the 'classic' extra)
    with served_and_local(serve, gym.make, "CartPole-v1",
                          render_mode="rgb_array") as (remote, local):
        remote.reset(seed=5)
        local.reset(seed=5)
        frames = 0
        for action in [0, 1, 1, 0, 1, 1, 1, 0]:
            remote_frame = remote.render()
            local_frame = local.render()
            assert isinstance(remote_frame, np.ndarray)
            assert remote_frame.dtype == np.uint8
            assert remote_frame.shape == local_frame.shape == (400, 600, 3)
            assert remote_frame.tobytes() == local_frame.tobytes()
            frames += 1
            remote.step(action)
            local.step(action)
        assert frames == 8


def test_rgb_array_frames_match_local_without_pygame(serve: Callable[..., Any]) -> None:
    with served_and_local(serve, DictObsEnv, render_mode="rgb_array") as (remote, local):
        assert remote.render_mode == "rgb_array"
        remote.reset(seed=3)
        local.reset(seed=3)
        for action in [0, 2, 2, 1, 3]:
            remote.step(np.int64(action))
            local.step(np.int64(action))
            remote_frame = remote.render()
            local_frame = local.render()
            assert_same(remote_frame, local_frame, "frame")
            assert remote_frame.dtype == np.uint8
            assert remote_frame.any()


def test_ansi_render_matches_local(serve: Callable[..., Any]) -> None:
    with served_and_local(serve, gym.make, "FrozenLake-v1", render_mode="ansi") as (remote, local):
        assert remote.render_mode == "ansi"
        remote.reset(seed=1)
        local.reset(seed=1)
        for action in [2, 2, 1]:
            remote.step(action)
            local.step(action)
            text = remote.render()
            assert isinstance(text, str)
            assert text == local.render()


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
@pytest.mark.filterwarnings("ignore:.*serves an env without a render mode")
@pytest.mark.parametrize("make", [lambda: gym.make("CartPole-v1"), CounterEnv, DictObsEnv],
                         ids=["CartPole-v1", "CounterEnv-no-render-method", "DictObsEnv"])
def test_render_without_render_mode_returns_none(serve: Callable[..., Any],
                                                 make: Callable[[], Any]) -> None:
    with connect(serve(make())) as remote:
        assert remote.render_mode is None
        remote.reset(seed=0)
        assert remote.render() is None
        remote.step(remote.action_space.sample())
        assert remote.render() is None
