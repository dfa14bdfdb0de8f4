"""``rlmesh serve TARGET``: env ids of every suite, serve options, and envs rlmesh refuses.

Real ``rlmesh serve`` child processes on 127.0.0.1 port 0 (the ``spawn`` fixture), real env
suites (ale_py, pettingzoo, gym 0.26; skipped with a reason when absent), strict comparisons
against local envs.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import EnvServer
from rlmesh.cli.targets import load_target, parse_kwargs
from rlmesh.envs import CounterEnv, DictObsEnv
from rlmesh.errors import UnsupportedSpaceError
from rlmesh.numpy import RemoteEnv
from tests.support.deps import need
from tests.support.spaces import CustomSpace, assert_space_identical
from tests.support.values import assert_same

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PONG = "ale_py:ALE/Pong-v5"
ROOT = Path(__file__).resolve().parents[2]
HERE = __name__  # this module, importable as tests.integration.test_serve_targets
SHARED_COUNTER = CounterEnv()  # a module-level env instance, as ``module:instance`` names


def connect(server: Any, **kwargs: Any) -> RemoteEnv:
    """A numpy client of a spawned server."""
    return RemoteEnv(server.address, connect_timeout=10, timeout=30, **kwargs)


def serve_fails(*args: str) -> str:
    """Run ``rlmesh serve ARGS`` expecting exit 1 and a one-line error; returns its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "rlmesh", "serve", *args, "--address", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("rlmesh: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- env ids of every registered suite --------------------------------------------------------


@pytest.mark.parametrize("args", [[PONG], ["ALE/Pong-v5", "--import", "ale_py"]],
                         ids=["module-colon-id", "import-flag"])
def test_pong_is_served_by_id_bit_exact(spawn: Callable[..., Any], args: list[str]) -> None:
    need("ale_py")
    server = spawn(args[0], extra_args=args[1:])
    local = gym.make(PONG)
    remote = connect(server)
    try:
        assert remote.spec is not None and remote.spec.id == "ALE/Pong-v5"
        assert_space_identical(remote.observation_space, local.observation_space)
        assert_space_identical(remote.action_space, local.action_space)
        # Sticky actions (repeat_action_probability) draw from the RNG the reset seed sets.
        assert_same(remote.reset(seed=11), local.reset(seed=11), "reset")
        sampler = copy.deepcopy(local.action_space)
        sampler.seed(5)
        for step in range(50):
            action = sampler.sample()
            assert_same(remote.step(action), local.step(action), f"step {step}")
    finally:
        remote.close()
        local.close()


def test_render_mode_flag_gives_the_frames_of_a_local_env(spawn: Callable[..., Any]) -> None:
    need("ale_py")
    server = spawn(PONG, extra_args=["--render-mode", "rgb_array"])
    local = gym.make(PONG, render_mode="rgb_array")
    remote = connect(server)
    try:
        assert remote.render_mode == "rgb_array"
        remote.reset(seed=3)
        local.reset(seed=3)
        assert_same(remote.render(), local.render(), "first frame")
        for step in range(5):
            remote.step(step % 2)
            local.step(step % 2)
        frame = remote.render()
        assert isinstance(frame, np.ndarray) and frame.shape == (210, 160, 3)
        assert_same(frame, local.render(), "frame after 5 steps")
    finally:
        remote.close()
        local.close()


def test_render_mode_flag_reaches_a_callable(spawn: Callable[..., Any]) -> None:
    server = spawn("rlmesh.envs:DictObsEnv", extra_args=["--render-mode", "rgb_array"])
    local = DictObsEnv(render_mode="rgb_array")
    with connect(server) as remote:
        assert remote.render_mode == "rgb_array"
        remote.reset(seed=1)
        local.reset(seed=1)
        assert_same(remote.render(), local.render())


@pytest.mark.parametrize("target", ["CartPole-v1",
                                    "gymnasium.envs.classic_control.cartpole:CartPoleEnv"],
                         ids=["env-id", "callable-in-time-limit"])
def test_max_episode_steps_truncates_at_step_5(spawn: Callable[..., Any], target: str) -> None:
    server = spawn(target, extra_args=["--max-episode-steps", "5"])
    with connect(server) as remote:
        for episode in range(2):
            remote.reset(seed=episode)
            for step in range(1, 6):
                _, _, terminated, truncated, _ = remote.step(step % 2)  # keeps the pole up
                assert not terminated
                assert truncated == (step == 5), f"episode {episode} step {step}"


def test_token_flag_refuses_a_client_without_it(spawn: Callable[..., Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMESH_TOKEN", raising=False)
    server = spawn("CartPole-v1", extra_args=["--token", "flag-token"])
    for wrong in (None, "other-token"):
        with pytest.raises(rlmesh.AuthenticationError):
            connect(server, token=wrong)
    with connect(server, token="flag-token") as remote:
        remote.reset(seed=0)
        assert remote.step(0)[4] == {}


# -- command-line errors ----------------------------------------------------------------------


def test_unregistered_namespace_names_the_import_and_keeps_gymnasiums_hint() -> None:
    message = serve_fails("ALE/Pong-v5")  # ale_py is not imported, installed or not
    assert "Namespace ALE not found" in message
    assert "rlmesh serve ale_py:ALE/Pong-v5" in message
    assert "--import ale_py" in message


def test_unknown_id_exits_1_naming_import() -> None:
    message = serve_fails("Cartpole-v1")
    assert "Did you mean: `CartPole`?" in message  # Gymnasium's own suggestion
    assert "--import MODULE" in message


def test_unknown_id_after_importing_its_module_keeps_gymnasiums_suggestion() -> None:
    need("ale_py")
    message = serve_fails("ale_py:ALE/Pongg-v5")
    assert "no env id 'ALE/Pongg-v5' is registered after importing 'ale_py'" in message
    assert "Did you mean: `Pong`?" in message


@pytest.mark.parametrize(("args", "expected"), [
    (["CartPole-v1", "--kwargs", "{bad"], "--kwargs is not valid JSON"),
    (["CartPole-v1", "--kwargs", "[1]"], "--kwargs must be a JSON object"),
    (["CartPole-v1", "--import", "no_such_module_xyz"], "cannot import 'no_such_module_xyz' "
     "for --import no_such_module_xyz"),
    (["CartPole-v1", "--render-mode", "rgb_array", "--kwargs", '{"render_mode": "human"}'],
     "render_mode is given twice"),
    (["CartPole-v1", "--max-episode-steps", "0"], "--max-episode-steps must be >= 1"),
    ([f"{HERE}:SHARED_COUNTER", "--render-mode", "rgb_array"],
     "is an env instance, built already, so --render-mode cannot apply"),
    (["rlmesh.envs:CounterEnv", "--max-episode-steps", "5"],
     "rlmesh.envs.CounterEnv built a rlmesh.envs.CounterEnv; derive the env from "
     "gymnasium.Env"),
], ids=["kwargs-not-json", "kwargs-not-object", "import-missing", "render-mode-twice",
        "max-steps-zero", "instance-render-mode", "time-limit-needs-gymnasium-env"])
def test_bad_options_exit_1_naming_the_flag(args: list[str], expected: str) -> None:
    assert expected in serve_fails(*args)


# -- envs rlmesh does not serve yet -----------------------------------------------------------


def _rps(api: str) -> Any:
    rps_v2 = need("pettingzoo.classic.rps_v2")
    return rps_v2.env() if api == "AEC" else rps_v2.parallel_env()


def _assert_multi_agent_message(message: str, api: str) -> None:
    assert f"is a PettingZoo multi-agent env ({api} API)" in message
    assert "does not serve multi-agent envs yet" in message
    assert "single-agent view" in message and "SuperSuit" in message


@pytest.mark.parametrize("api", ["AEC", "Parallel"])
@pytest.mark.parametrize("as_factory", [False, True], ids=["instance", "factory"])
def test_pettingzoo_env_is_refused_as_multi_agent(api: str, as_factory: bool) -> None:
    need("pettingzoo")
    with pytest.raises(UnsupportedSpaceError) as info:
        EnvServer((lambda: _rps(api)) if as_factory else _rps(api), "127.0.0.1:0")
    assert isinstance(info.value, TypeError)
    _assert_multi_agent_message(str(info.value), api)
    assert "player_0, player_1" in str(info.value)


@pytest.mark.parametrize(("attribute", "api"), [("env", "AEC"), ("parallel_env", "Parallel")])
def test_serving_a_pettingzoo_env_fails_at_start(attribute: str, api: str) -> None:
    need("pettingzoo")
    _assert_multi_agent_message(serve_fails(f"pettingzoo.classic.rps_v2:{attribute}"), api)


def _assert_legacy_gym_message(message: str, what: str) -> None:
    assert f"{what} comes from the legacy `gym" in message
    assert "shimmy.GymV26CompatibilityV0(env=gym.make(...))" in message
    assert "GymV26Environment-v0" in message and "port the env to Gymnasium" in message
    assert "--compat gym" in message and "compat=\"gym\"" in message


@pytest.mark.parametrize("as_factory", [False, True], ids=["instance", "factory"])
def test_legacy_gym_env_is_refused_with_the_shimmy_hint(as_factory: bool) -> None:
    old_gym = need("gym")
    with pytest.raises(UnsupportedSpaceError) as info:
        make = lambda: old_gym.make("CartPole-v1")  # noqa: E731
        EnvServer(make if as_factory else make(), "127.0.0.1:0")
    _assert_legacy_gym_message(str(info.value), "the env gym.wrappers.time_limit.TimeLimit")


def test_serving_a_legacy_gym_env_fails_at_start() -> None:
    need("gym")
    message = serve_fails("gym:make", "--kwargs", '{"id": "CartPole-v1"}')
    _assert_legacy_gym_message(message, "the env gym.wrappers.time_limit.TimeLimit")


class LegacySpaceEnv(gym.Env[Any, Any]):
    """A Gymnasium env whose observation space comes from the ``gym`` package."""

    def __init__(self) -> None:
        self.observation_space = need("gym").spaces.Box(-1.0, 1.0, (2,))
        self.action_space = gym.spaces.Discrete(2)


def test_legacy_gym_space_is_refused_with_the_shimmy_hint() -> None:
    need("gym")
    with pytest.raises(UnsupportedSpaceError) as info:
        EnvServer(LegacySpaceEnv(), "127.0.0.1:0")
    _assert_legacy_gym_message(str(info.value), "the space gym.spaces.box.Box")


class NotASpace:
    """A space-like class from no known library."""

    shape = (2,)


class ForeignSpaceEnv(CounterEnv):
    def __init__(self, space: Any) -> None:
        super().__init__()
        self.observation_space = space


@pytest.mark.parametrize(("space", "expected"), [
    (CustomSpace(), "the space tests.support.spaces.CustomSpace has no wire schema"),
    (NotASpace(), f"{HERE}.NotASpace is not a Gymnasium space"),
    (gym.spaces.Dict({"ok": gym.spaces.Discrete(2), "bad": CustomSpace()}),
     "the space tests.support.spaces.CustomSpace has no wire schema"),
], ids=["space-subclass", "not-a-space", "nested"])
def test_foreign_space_is_named_with_its_qualified_class(space: Any, expected: str) -> None:
    with pytest.raises(UnsupportedSpaceError) as info:
        EnvServer(ForeignSpaceEnv(space), "127.0.0.1:0")
    assert expected in str(info.value)
    assert ("Box, Discrete, MultiDiscrete, MultiBinary, Text, Dict, Tuple, Sequence, Graph, "
            "OneOf") in str(info.value)


# -- load_target resolution -------------------------------------------------------------------


def test_env_id_gets_render_mode_and_max_episode_steps() -> None:
    env = load_target("CartPole-v1", render_mode="rgb_array", max_episode_steps=7)()
    try:
        assert env.render_mode == "rgb_array"
        assert env.spec.max_episode_steps == 7
    finally:
        env.close()


def test_callable_gets_kwargs_render_mode_and_a_time_limit() -> None:
    env = load_target("rlmesh.envs:ImageEnv", {"height": 4, "width": 5})()
    assert env.observation_space.shape == (4, 5, 3)
    env = load_target("rlmesh.envs:DictObsEnv", render_mode="rgb_array", max_episode_steps=3)()
    assert isinstance(env, gym.wrappers.TimeLimit)
    assert env.render_mode == "rgb_array"
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


def test_instance_is_served_as_is_and_refuses_options() -> None:
    assert load_target(f"{HERE}:SHARED_COUNTER") is SHARED_COUNTER
    for options, flag in (({"kwargs": {"episode_length": 2}}, "--kwargs"),
                          ({"render_mode": "rgb_array"}, "--render-mode"),
                          ({"max_episode_steps": 3}, "--max-episode-steps")):
        with pytest.raises(ValueError, match=f"env instance, built already, so {flag}"):
            load_target(f"{HERE}:SHARED_COUNTER", **options)


@pytest.mark.parametrize(("target", "expected"), [
    ("rlmesh.envs:NoSuchEnv", "'rlmesh.envs' has no attribute 'NoSuchEnv' (nor is "
     "'NoSuchEnv' a registered env id)"),
    ("pettingzoo.classic:rps_v2", "is a module, not an env"),
    (":CartPole-v1", "is not of the form module:callable or module:ENV_ID"),
    ("CartPole", "did you mean 'CartPole-v1'?"),
])
def test_unresolvable_targets_say_why(target: str, expected: str) -> None:
    if target.startswith("pettingzoo"):
        need("pettingzoo")
    with pytest.raises(ValueError) as info:
        load_target(target)
    assert expected in str(info.value)


def test_parse_kwargs() -> None:
    assert parse_kwargs(None) is None
    assert parse_kwargs('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="--kwargs is not valid JSON"):
        parse_kwargs("{bad")


def test_id_factory_registers_its_id_again_in_a_fresh_process() -> None:
    """Worker processes (``--workers``) unpickle the factory without having imported ale_py."""
    need("ale_py")
    factory = load_target(PONG, max_episode_steps=9)
    script = ("import pickle, sys; make = pickle.load(sys.stdin.buffer); env = make(); "
              "print(env.spec.id, env.spec.max_episode_steps)")
    result = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(factory),
                            capture_output=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().split() == ["ALE/Pong-v5", "9"]
