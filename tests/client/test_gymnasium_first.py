"""Gymnasium-first defaults: check_env against instance endpoints, lazy spec copies, frames.

The README's first example serves an env *instance* (one session at a time); Gymnasium's
``check_env`` makes (and closes) a copy of the env from its spec, which must not take a second
session until it is used. Render frames are numpy arrays whatever the value backend, so
``RecordVideo`` works on ``rlmesh.RemoteEnv`` too.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlmesh
import rlmesh.numpy
from rlmesh.envs import DictObsEnv
from tests.support.deps import need
from tests.support.net import free_port, wait_until_listening
from tests.support.processes import kill_group

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "python" / "quickstart"


def checked(env: gym.Env[Any, Any]) -> list[str]:
    """Run check_env; return its warnings (it raises on a failed check)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    return [str(w.message) for w in caught]


def test_check_env_passes_against_the_readme_instance_endpoint(
        serve: Callable[..., Any]) -> None:
    server = serve(gym.make("CartPole-v1"))  # README: EnvServer(gym.make("CartPole-v1"), ...)
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        messages = checked(env)
    assert not any("Busy" in m or "session" in m for m in messages), messages
    assert server.stats["sessions"] == 1  # the spec copy check_env made never connected


def test_check_env_passes_against_the_quickstart_server(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(QUICKSTART / "serve_gymnasium.py"), "--address",
             f"127.0.0.1:{port}"], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_listening(process, port, log)
        with rlmesh.numpy.RemoteEnv(f"127.0.0.1:{port}") as env:
            checked(env)
        with rlmesh.RemoteEnv(f"127.0.0.1:{port}") as env:  # plain values: warns, passes
            checked(env)
    finally:
        kill_group(process)


def test_a_spec_copy_opens_its_session_on_first_use(serve: Callable[..., Any]) -> None:
    server = serve(gym.make("CartPole-v1"))
    env = rlmesh.numpy.RemoteEnv(server.address)
    copy = gym.make(env.spec)
    assert "not connected yet" in repr(copy.unwrapped)
    assert not copy.unwrapped.closed
    assert copy.unwrapped.observation_space == env.observation_space
    assert server.stats["sessions"] == 1  # made, not yet used: no session
    with pytest.raises(rlmesh.EnvBusyError):  # the instance is still held by `env`
        copy.reset(seed=0)
    assert server.stats["sessions"] == 2
    env.close()
    obs, _ = copy.reset(seed=0)  # now it connects
    local, _ = gym.make("CartPole-v1").reset(seed=0)
    assert np.array_equal(obs, local)
    assert server.stats["sessions"] == 3
    copy.close()
    assert copy.unwrapped.closed


def test_a_never_used_spec_copy_closes_cleanly_and_stays_closed(
        serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with rlmesh.numpy.RemoteEnv(server.address, timeout=7) as env:
        copy = env.spec.make()
        assert copy.unwrapped.timeout == 7
        copy.unwrapped.timeout = 3
        copy.close()
        copy.close()
        with pytest.raises(rlmesh.EnvClosedError):
            copy.reset()
    assert server.stats["sessions"] == 1


def test_a_spec_copy_refuses_an_endpoint_that_now_serves_another_env(
        serve: Callable[..., Any]) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    first = rlmesh.EnvServer(lambda: gym.make("CartPole-v1"), address).start()
    env = rlmesh.numpy.RemoteEnv(address)
    copy = gym.make(env.spec)
    env.close()
    first.shutdown()
    second = rlmesh.EnvServer(lambda: gym.make("MountainCar-v0"), address).start()
    try:
        with pytest.raises(rlmesh.EndpointKindError, match="no longer serves"):
            copy.reset()
    finally:
        second.shutdown()


def test_plain_remote_env_renders_numpy_frames(serve: Callable[..., Any]) -> None:
    server = serve(lambda: DictObsEnv(render_mode="rgb_array"))
    with rlmesh.RemoteEnv(server.address) as env:
        obs, _ = env.reset(seed=0)
        assert isinstance(obs["position"], list)  # values stay plain...
        frame = env.render()
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8  # ...frames do not
        assert frame.ndim == 3 and frame.shape[2] == 3


def test_record_video_works_on_the_plain_remote_env(serve: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    need("moviepy")
    server = serve(lambda: DictObsEnv(render_mode="rgb_array"))
    env = gym.wrappers.RecordVideo(rlmesh.RemoteEnv(server.address), str(tmp_path / "videos"),
                                   episode_trigger=lambda episode: True)
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_render_without_a_render_mode_warns_on_the_client(serve: Callable[..., Any]) -> None:
    server = serve(lambda: DictObsEnv())  # no render mode
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset(seed=0)
        with pytest.warns(rlmesh.RLMeshWarning, match="--render-mode rgb_array"):
            assert env.render() is None
        with warnings.catch_warnings():
            warnings.simplefilter("error", rlmesh.RLMeshWarning)
            assert env.render() is None  # once per env


def test_a_remote_env_cannot_be_pickled_and_says_why(serve: Callable[..., Any]) -> None:
    import copy
    import pickle

    server = serve(lambda: gym.make("CartPole-v1"))
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        for attempt in (pickle.dumps, copy.deepcopy):
            with pytest.raises(TypeError, match=r"live connection .* gymnasium.make\(env.spec\)"):
                attempt(env)
        env.reset(seed=0)  # still usable


def test_a_spec_copy_reads_remote_attributes_once_used(serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        copy = gym.make(env.spec)
        assert copy.unwrapped.gravity == 9.8  # the first use opens its session
        assert server.stats["sessions"] == 2
        copy.close()
