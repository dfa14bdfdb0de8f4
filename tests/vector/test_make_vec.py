"""``rlmesh.make_vec``: local worker processes as one Gymnasium vector env.

Trajectories are compared with Gymnasium's own vector envs, driven by the same seeds and
actions, strictly (types, dtypes with byte order, shapes, bytes, ``_key`` masks, object
arrays item by item). The cleanup tests check that no worker process outlives its owner,
however the owner ends: ``close()``, a normal interpreter exit (``atexit``), or SIGKILL.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

import rlmesh
from rlmesh.envs import DictObsEnv
from tests.support.episodes import action_sampler
from tests.support.processes import alive, kill_stragglers, live_children, stop_child, wait_dead
from tests.support.values import assert_same_values

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)"),
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

STEPS = 320
FORKSERVER = {"context": "forkserver"}
"""Gymnasium's AsyncVectorEnv, started without fork() from a process that may hold JAX's
threads (a fork there warns, rightly)."""


# -- processes ---------------------------------------------------------------------------------


def read_line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"no output from the child within {timeout}s"
    return str(stream.readline().decode())


def child_env() -> dict[str, str]:
    return dict(os.environ)


# -- strict comparison -------------------------------------------------------------------------


def assert_spaces(remote: VectorEnv[Any, Any, Any], local: VectorEnv[Any, Any, Any]) -> None:
    for name in ("observation_space", "action_space", "single_observation_space",
                 "single_action_space"):
        a, e = getattr(remote, name), getattr(local, name)
        assert type(a) is type(e) and a == e, f"{name}: {a} != {e}"
        assert a.dtype == e.dtype and a.shape == e.shape, name


def lockstep(remote: VectorEnv[Any, Any, Any], local: VectorEnv[Any, Any, Any], *,
             steps: int = STEPS, seed: int = 11, action_seed: int = 5,
             reseed_at: int | None = 200) -> dict[str, int]:
    """Drive both envs with the same seeds and actions, compare everything.

    Returns counts: sub-env episode ends, and steps whose info had ``final_obs``.
    """
    assert remote.num_envs == local.num_envs
    assert_spaces(remote, local)
    obs, info = remote.reset(seed=seed)
    expected_obs, expected_info = local.reset(seed=seed)
    assert_same_values(obs, expected_obs, "reset obs")
    assert_same_values(info, expected_info, "reset info", key_order=False)
    sampler = action_sampler(local.action_space, action_seed)
    counts = {"ends": 0, "final_obs": 0}
    for t in range(steps):
        if t == reseed_at:
            got, want = remote.reset(seed=seed + 1000), local.reset(seed=seed + 1000)
            assert_same_values(got[0], want[0], f"reseed {t} obs")
            assert_same_values(got[1], want[1], f"reseed {t} info", key_order=False)
        actions = sampler.sample()
        got = remote.step(actions)
        want = local.step(actions)
        assert len(got) == 5
        for name, a, e in zip(("obs", "reward", "terminated", "truncated"), got, want,
                              strict=False):
            assert_same_values(a, e, f"step {t} {name}")
        assert_same_values(got[4], want[4], f"step {t} info", key_order=False)
        counts["ends"] += int(np.logical_or(want[2], want[3]).sum())
        counts["final_obs"] += int("final_obs" in want[4])
    return counts



# == parity with Gymnasium =====================================================================


@pytest.mark.parametrize("num_workers", [None, 1, 2, 3], ids=lambda n: f"workers={n}")
def test_cartpole_matches_gymnasium_async(closing: Any, num_workers: int | None) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 8, num_workers=num_workers))
    local = closing(gym.make_vec("CartPole-v1", 8, vectorization_mode="async",
                                 vector_kwargs=FORKSERVER))
    assert isinstance(remote, VectorEnv)
    assert remote.num_envs == 8
    expected_workers = num_workers or max(1, min((os.cpu_count() or 1) - 1, 8))
    assert len(remote.workers.pids) == expected_workers
    assert remote.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    counts = lockstep(remote, local)
    assert counts["ends"] > 20, "the run never exercised autoreset"


@pytest.mark.parametrize("num_workers", [1, 3], ids=lambda n: f"workers={n}")
def test_dict_obs_factory_matches_async_vector_env(closing: Any, num_workers: int) -> None:
    remote = closing(rlmesh.make_vec(DictObsEnv, 8, num_workers=num_workers))
    local = closing(AsyncVectorEnv([DictObsEnv] * 8, **FORKSERVER))
    counts = lockstep(remote, local, steps=160, reseed_at=None)
    assert counts["ends"] >= 8


@pytest.mark.parametrize("num_workers", [1, 3], ids=lambda n: f"workers={n}")
def test_same_step_autoreset_matches_gymnasium(closing: Any, num_workers: int) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 8, num_workers=num_workers,
                                     vector_kwargs={"autoreset_mode": "SameStep"}))
    local = closing(gym.make_vec("CartPole-v1", 8, vectorization_mode="async",
                                 vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP,
                                                **FORKSERVER}))
    assert remote.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    counts = lockstep(remote, local)
    assert counts["final_obs"] > 10, "no step carried final_obs/final_info"


def test_same_step_dict_obs_final_info_matches_sync(closing: Any) -> None:
    mode = AutoresetMode.SAME_STEP
    remote = closing(rlmesh.make_vec(DictObsEnv, 5, num_workers=2,
                                     vector_kwargs={"autoreset_mode": mode}))
    local = closing(SyncVectorEnv([DictObsEnv] * 5, autoreset_mode=mode))
    counts = lockstep(remote, local, steps=160, reseed_at=None)
    assert counts["final_obs"] > 0


def test_gym_make_kwargs_max_episode_steps(closing: Any) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 4, num_workers=2, max_episode_steps=5))
    local = closing(gym.make_vec("CartPole-v1", 4, vectorization_mode="sync",
                                 max_episode_steps=5))
    remote.reset(seed=3)
    for _ in range(4):
        _, _, terminated, truncated, _ = remote.step(np.zeros(4, np.int64))
        assert not terminated.any() and not truncated.any()
    _, _, terminated, truncated, _ = remote.step(np.zeros(4, np.int64))
    assert truncated.all(), "max_episode_steps=5 did not reach the workers' gym.make"
    assert not terminated.any()
    lockstep(remote, local, steps=60, reseed_at=None)


def test_gym_make_kwargs_pendulum_gravity(closing: Any) -> None:
    remote = closing(rlmesh.make_vec("Pendulum-v1", 3, num_workers=1, g=2.0))
    local = closing(SyncVectorEnv([lambda: gym.make("Pendulum-v1", g=2.0)] * 3))
    default = closing(SyncVectorEnv([lambda: gym.make("Pendulum-v1")] * 3))
    lockstep(remote, local, steps=30, reseed_at=None)
    # The gravity really changed the dynamics: default g gives other observations.
    actions = np.full((3, 1), 0.5, np.float32)
    remote.reset(seed=1)
    default.reset(seed=1)
    for _ in range(5):
        got, want = remote.step(actions)[0], default.step(actions)[0]
    assert not np.array_equal(got, want)


def test_more_workers_than_envs_is_capped(closing: Any) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 2, num_workers=5))
    assert len(remote.workers.pids) == 2
    local = closing(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    lockstep(remote, local, steps=60, reseed_at=30)


def test_bad_arguments_raise_and_start_nothing() -> None:
    before = live_children(os.getpid())
    with pytest.raises(ValueError):
        rlmesh.make_vec("CartPole-v1", 0)
    with pytest.raises(ValueError):
        rlmesh.make_vec("CartPole-v1", -3)
    with pytest.raises(TypeError):
        rlmesh.make_vec(DictObsEnv, 2, render_mode="rgb_array")
    with pytest.raises(TypeError, match="vector_kwargs"):
        rlmesh.make_vec("CartPole-v1", 2, vector_kwargs={"worker": print})
    with pytest.raises(ValueError, match="Invalid vectorization mode"):
        rlmesh.make_vec("CartPole-v1", 2, vectorization_mode="threads")
    with pytest.raises(gym.error.NameNotFound):  # Gymnasium's own error, before any worker
        rlmesh.make_vec("CartPoel-v1", 2)
    with pytest.raises(gym.error.VersionNotFound):
        rlmesh.make_vec("CartPole-v99", 2)
    with pytest.raises(gym.error.Error):
        rlmesh.make_vec("NoSuchNamespace/Thing-v0", 2)
    with pytest.raises(ValueError):
        rlmesh.make_vec("CartPole-v1", 2, vector_kwargs={"autoreset_mode": "Sometimes"})
    with pytest.raises(TypeError):
        rlmesh.make_vec(42, 2)  # type: ignore[arg-type]
    assert live_children(os.getpid()) - before == set()


# == cleanup ===================================================================================


def test_close_stops_workers_and_removes_socket_directory() -> None:
    env = rlmesh.make_vec("CartPole-v1", 5, num_workers=3)
    pool = env.workers
    pids, directory = list(pool.pids), pool.directory
    try:
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        assert os.path.isdir(directory)
        env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()
    assert [pid for pid in pids if alive(pid)] == [], "close() returned with workers alive"
    assert not os.path.exists(directory)
    env.close()  # idempotent


def test_workers_outlive_the_thread_that_built_them(closing: Any) -> None:
    """The workers belong to the env, not to the thread that happened to call make_vec."""
    built: list[Any] = []
    thread = threading.Thread(target=lambda: built.append(
        rlmesh.make_vec("CartPole-v1", 4, num_workers=2)))
    thread.start()
    thread.join()
    remote = closing(built[0])
    local = closing(gym.make_vec("CartPole-v1", 4, vectorization_mode="sync"))
    time.sleep(0.3)
    pids = remote.workers.pids
    assert [pid for pid in pids if alive(pid)] == pids, (
        "the workers died when the thread that called make_vec exited")
    lockstep(remote, local, steps=50, reseed_at=None)


def test_killed_worker_surfaces_and_close_still_cleans_up() -> None:
    env = rlmesh.make_vec("CartPole-v1", 4, num_workers=2)
    pool = env.workers
    pids, directory = list(pool.pids), pool.directory
    try:
        env.reset(seed=0)
        os.kill(pids[1], signal.SIGKILL)
        assert wait_dead(pids[1:], 2.0) == []
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshError):
            env.step(np.zeros(4, np.int64))
        assert time.monotonic() - start < 2.0
    finally:
        start = time.monotonic()
        env.close()
        assert time.monotonic() - start < 5.0
    assert [pid for pid in pids if alive(pid)] == []
    assert not os.path.exists(directory)


def test_unknown_env_kwarg_fails_at_make_vec(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the pool directory lands here
    before = live_children(os.getpid())
    with pytest.raises(RuntimeError, match="bogus_kwarg"):
        rlmesh.make_vec("CartPole-v1", 2, num_workers=2, bogus_kwarg=1)
    assert live_children(os.getpid()) - before == set()
    assert list(tmp_path.iterdir()) == []


def test_factory_error_surfaces_and_leaves_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken_factory() -> gym.Env[Any, Any]:
        raise ValueError("factory exploded with code 4711")

    before = live_children(os.getpid())
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="factory exploded with code 4711") as info:
        rlmesh.make_vec(broken_factory, 4, num_workers=2)
    assert time.monotonic() - start < 10
    assert "ValueError" in str(info.value)
    assert live_children(os.getpid()) - before == set()
    assert list(tmp_path.iterdir()) == [], "the worker directory was left behind"


def test_start_timeout_kills_a_hanging_factory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def hanging_factory() -> gym.Env[Any, Any]:
        import time

        time.sleep(30)
        raise AssertionError("unreachable")

    before = live_children(os.getpid())
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out"):
        rlmesh.make_vec(hanging_factory, 2, num_workers=2, start_timeout=1.0)
    assert time.monotonic() - start < 4.0
    assert live_children(os.getpid()) - before == set()
    assert list(tmp_path.iterdir()) == []


ATEXIT_SCRIPT = textwrap.dedent("""
    import atexit, json, os, sys

    state = {}

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
        except FileNotFoundError:
            return False
        return stat[stat.rindex(")") + 2] not in "ZX"

    def after_rlmesh():
        # Registered before rlmesh is imported, so it runs after rlmesh's own handler.
        report = {"alive": [p for p in state["pids"] if alive(p)],
                  "dir_exists": os.path.exists(state["dir"])}
        print("AFTER " + json.dumps(report), flush=True)

    atexit.register(after_rlmesh)

    import rlmesh

    env = rlmesh.make_vec("CartPole-v1", 4, num_workers=2)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    state["pids"], state["dir"] = env.workers.pids, env.workers.directory
    print("WORKERS " + json.dumps({"pids": state["pids"], "dir": state["dir"]}), flush=True)
    # exit normally, without env.close()
""")


def test_interpreter_exit_without_close_stops_workers() -> None:
    result = subprocess.run([sys.executable, "-c", ATEXIT_SCRIPT], capture_output=True,
                            timeout=30, env=child_env(), cwd=tempfile.gettempdir())
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    lines = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
             for line in out.splitlines() if line.startswith(("WORKERS ", "AFTER "))}
    pids = lines["WORKERS"]["pids"]
    try:
        assert len(pids) == 2
        assert lines["AFTER"]["alive"] == [], "rlmesh's atexit handler did not stop the workers"
        assert lines["AFTER"]["dir_exists"] is False
        assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-3000:]
        assert wait_dead(pids, 3.0) == []
    finally:
        kill_stragglers(pids)
        shutil.rmtree(lines["WORKERS"]["dir"], ignore_errors=True)


SIGKILL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import rlmesh

    env = rlmesh.make_vec("CartPole-v1", 4, num_workers=2)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    print("WORKERS " + json.dumps({"pids": env.workers.pids, "dir": env.workers.directory}),
          flush=True)
    time.sleep(60)
""")


def test_sigkilled_owner_leaves_no_workers() -> None:
    child = subprocess.Popen([sys.executable, "-c", SIGKILL_SCRIPT], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=child_env(), cwd=tempfile.gettempdir())
    pids: list[int] = []
    directory = ""
    try:
        line = read_line(child.stdout, 20.0)
        assert line.startswith("WORKERS "), (line, child.stderr.read().decode()[-3000:]
                                             if child.poll() is not None else "")
        report = json.loads(line.split(" ", 1)[1])
        pids, directory = report["pids"], report["dir"]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        child.kill()  # SIGKILL: no atexit, no finally
        child.wait(5)
        start = time.monotonic()
        left = wait_dead(pids, 5.0)
        assert left == [], f"workers {left} outlived their SIGKILLed owner"
        assert time.monotonic() - start < 5.0
    finally:
        stop_child(child)
        kill_stragglers(pids)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


# == drop-in for gymnasium.make_vec ============================================================


def test_gymnasium_make_vec_arguments_are_accepted(closing: Any) -> None:
    wrappers = [lambda env: gym.wrappers.TransformReward(env, lambda r: 2 * r),
                lambda env: gym.wrappers.TimeLimit(env, 30)]
    remote = closing(rlmesh.make_vec("CartPole-v1", 3, "async", {"copy": False,
                                     "shared_memory": True}, wrappers, num_workers=2))
    local = closing(gym.make_vec("CartPole-v1", 3, "async", {"copy": False, **FORKSERVER},
                                 wrappers))
    assert remote.spec is not None and remote.spec.id == "CartPole-v1"
    assert remote.spec.kwargs["num_envs"] == 3
    counts = lockstep(remote, local, steps=120, reseed_at=None)  # rewards 2.0, cut at 30
    assert counts["ends"] >= 4


def test_wrappers_run_in_the_workers_in_order(closing: Any) -> None:
    wrappers = [lambda env: gym.wrappers.TimeLimit(env, 7),
                gym.wrappers.RecordEpisodeStatistics]
    remote = closing(rlmesh.make_vec("CartPole-v1", 2, wrappers=wrappers))
    remote.reset(seed=0)
    for _ in range(7):
        _, _, _, truncated, infos = remote.step(np.ones(2, dtype=np.int64))
    assert truncated.all() or infos["_episode"].any()
    assert {"r", "l", "t"} <= set(infos["episode"])
    assert infos["episode"]["l"].tolist() == [7, 7]


def test_sync_and_vector_entry_point_modes_are_gymnasium_own(closing: Any) -> None:
    sync = closing(rlmesh.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    assert type(sync) is SyncVectorEnv
    entry = closing(rlmesh.make_vec("CartPole-v1", 2, vectorization_mode="vector_entry_point"))
    assert type(entry) is type(gym.make_vec("CartPole-v1", 2,
                                            vectorization_mode="vector_entry_point"))
    with pytest.raises(TypeError, match="needs an env id"):
        rlmesh.make_vec(DictObsEnv, 2, vectorization_mode="sync")


def test_an_env_spec_is_accepted(closing: Any) -> None:
    remote = closing(rlmesh.make_vec(gym.spec("CartPole-v1"), 2, max_episode_steps=5))
    local = closing(gym.make_vec("CartPole-v1", 2, "async", FORKSERVER, max_episode_steps=5))
    lockstep(remote, local, steps=30, reseed_at=None)
