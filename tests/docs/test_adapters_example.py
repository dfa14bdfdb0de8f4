"""The adapters example (examples/python/adapters): its scripts as real processes, and its env
and model over one endpoint, two endpoints and make_vec workers."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import numpy as np
import pytest

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.numpy import Model
from tests.support.net import free_port, wait_until_listening
from tests.support.processes import kill_group

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python" / "adapters"
EPISODE = re.compile(r"episode (\d+): (\d+) steps, return (-?\d+\.\d\d), (success|no success)")


def load(name: str) -> ModuleType:
    """One of the example's modules, imported from its file under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"adapters_example_{name}",
                                                  EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # cloudpickle pickles only registered modules by value
    spec.loader.exec_module(module)
    return module


ENV = load("env")
MODEL = load("model")


def local_episodes(seeds: list[int]) -> list[tuple[int, float, bool]]:
    """(steps, return, success) of each seed, with the env in this process: the reference."""
    result = Model(MODEL.predict, spec=MODEL.SPEC).run(
        adapt.tag(ENV.TabletopEnv(), ENV.TAGS), seeds=seeds)
    return [(e.steps, e.reward, bool(e.success)) for e in result.episodes]


def printed_episodes(lines: list[str]) -> list[tuple[int, float, bool]]:
    found = [EPISODE.fullmatch(line) for line in lines]
    return [(int(m.group(2)), float(m.group(3)), m.group(4) == "success")
            for m in found if m is not None]


def check_explain(lines: list[str]) -> None:
    """The explain block names both cameras, their conversions and the action's."""
    text = "\n".join(lines)
    assert '"image" <- agentview: as is' in text, text
    assert '"wrist_image" <- wrist: as is' in text, text
    assert "quat_wxyz->rot6d" in text
    assert '"language" <- instruction' in text
    assert "(rot6d->axis_angle)" in text
    assert re.search(r"model\[9:10\] range\(0\.0, 1\.0\)->\(-1\.0, 1\.0\) binary", text), text


def run_script(*args: str, timeout: float = 60) -> list[str]:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.timeout(90)
def test_demo_serves_runs_and_exits() -> None:
    lines = run_script(str(EXAMPLE / "demo.py"), "3")
    assert re.fullmatch(r"serving the tabletop env on 127\.0\.0\.1:\d+", lines[0])
    check_explain(lines)
    episodes = printed_episodes(lines)
    expected = local_episodes([0, 1, 2])
    assert [(s, ok) for s, _, ok in episodes] == [(s, ok) for s, _, ok in expected]
    assert np.allclose([r for _, r, _ in episodes], [r for _, r, _ in expected], atol=0.006)
    assert any(ok for _, _, ok in episodes), "the scripted policy never succeeded"
    assert lines[-1].startswith("summary: 3 episodes, mean return ")


@pytest.mark.timeout(90)
def test_serve_and_run_as_two_processes(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, str(EXAMPLE / "serve.py"), address],
                                  cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_listening(server, port, log)
        lines = run_script(str(EXAMPLE / "run.py"), address, "2")
    finally:
        kill_group(server)
    assert lines[0] == "resolved adapter:"
    check_explain(lines)
    episodes = printed_episodes(lines)
    assert [(s, ok) for s, _, ok in episodes] == [(s, ok) for s, _, ok in local_episodes([0, 1])]
    assert re.fullmatch(r"summary: 2 episodes, mean return -?\d+\.\d\d, success rate "
                        r"\d\.\d\d, \d+ steps", lines[-1])


def _vector_run(envs: Any, seeds: list[int]) -> list[tuple[int, float, bool]]:
    model = Model(MODEL.predict, spec=MODEL.SPEC)
    result = model.run(envs, seeds=seeds)
    assert isinstance(model.adapter, adapt.Adapter)  # resolved once, from the contract
    return [(e.steps, e.reward, bool(e.success)) for e in result.episodes]


def _same(got: list[tuple[int, float, bool]], want: list[tuple[int, float, bool]]) -> None:
    assert [(s, ok) for s, _, ok in got] == [(s, ok) for s, _, ok in want]
    np.testing.assert_allclose([r for _, r, _ in got], [r for _, r, _ in want], rtol=1e-6)


@pytest.mark.timeout(90)
def test_model_runs_on_a_vector_env_over_two_endpoints(serve: Callable[..., Any]) -> None:
    servers = [serve(ENV.TabletopEnv, tags=ENV.TAGS) for _ in range(2)]
    seeds = [0, 1, 2, 3]
    with rlmesh.RemoteVectorEnv([s.address for s in servers]) as envs:
        assert envs.num_envs == 2
        got = _vector_run(envs, seeds)
    _same(got, local_episodes(seeds))


@pytest.mark.timeout(120)
def test_model_runs_on_make_vec_workers() -> None:
    cloudpickle.register_pickle_by_value(ENV)  # the workers cannot import the example
    try:
        envs = rlmesh.make_vec(ENV.tagged_env, num_envs=2, num_workers=1)
        try:
            got = _vector_run(envs, [5, 6])
        finally:
            envs.close()
    finally:
        cloudpickle.unregister_pickle_by_value(ENV)
    _same(got, local_episodes([5, 6]))


def test_the_camera_resolution_is_a_parameter() -> None:
    env = ENV.TabletopEnv(camera=96)
    obs, _ = env.reset(seed=3)
    assert obs["agentview"].shape == obs["wrist"].shape == (96, 96, 3)
    assert env.observation_space["agentview"].shape == (96, 96, 3)
    with pytest.raises(ValueError, match="camera"):
        ENV.TabletopEnv(camera=8)
    adapter = adapt.resolve(ENV.TAGS, env.observation_space, env.action_space, MODEL.SPEC)
    text = adapter.explain()
    assert '"image" <- agentview: resize 96x96->128x128 bilinear' in text
    assert any("upscaled" in note for note in adapter.advisories())
    assert adapter.transform_obs(obs)["image"].shape == (128, 128, 3)
    native = ENV.TabletopEnv()
    obs, _ = native.reset(seed=3)
    same = adapt.resolve(ENV.TAGS, native.observation_space, native.action_space, MODEL.SPEC)
    assert same.transform_obs(obs)["image"] is obs["agentview"]  # nothing to do: as is


@pytest.mark.timeout(90)
def test_serve_takes_a_camera_flag(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, str(EXAMPLE / "serve.py"), address,
                                   "--camera", "96"],
                                  cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_listening(server, port, log)
        lines = run_script(str(EXAMPLE / "run.py"), address, "1")
    finally:
        kill_group(server)
    text = "\n".join(lines)
    assert '"image" <- agentview: resize 96x96->128x128 bilinear' in text, text
    assert printed_episodes(lines), text
