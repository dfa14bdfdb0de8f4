"""The torch and JAX backends against real servers, and the imports they must not cause.

CI installs both frameworks (CPU builds), so these tests run there; ``RLMESH_REQUIRE_BACKENDS=1``
(set by ``.ci/run``) turns a missing framework into a failure instead of a skip.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.envs import ImageEnv
from tests.support.deps import need


def run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_core_imports_never_pull_in_a_framework() -> None:
    result = run_python("""
        import sys
        import rlmesh, rlmesh.numpy
        from rlmesh.numpy import RemoteEnv, RemoteVectorEnv, Model
        rlmesh.run, rlmesh.evaluate, rlmesh.session
        loaded = sorted(m for m in ("torch", "jax", "jaxlib") if m in sys.modules)
        print("LOADED", loaded)
    """)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout


@pytest.mark.parametrize(("blocked", "statement", "extra"), [
    ("torch", "import rlmesh.torch", "torch"),
    ("jax", "import rlmesh.jax", "jax"),
    ("stable_baselines3", "import rlmesh.sb3", "sb3"),
    ("imageio", "import rlmesh; rlmesh.VideoRecorder('videos')", "record"),
    ("matplotlib", "import rlmesh.evaluation.plot, rlmesh.evaluation.results; "
     "rlmesh.evaluation.plot.plot_run(rlmesh.evaluation.results.RunResult(), 'x.png')", "plot"),
])
def test_a_missing_dependency_says_how_to_install_this_project(
        blocked: str, statement: str, extra: str, tmp_path: Path) -> None:
    result = run_python(f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if it were not installed
        try:
            {statement}
        except ImportError as exc:
            print("ERROR", type(exc).__name__, exc)
    """, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERROR MissingExtraError" in result.stdout, result.stdout
    # This project, installed from this checkout (editable), with the extra: never the
    # unrelated distribution of the same name on the public package index.
    checkout = str(Path(rlmesh.__file__).resolve().parents[2])
    assert f"pip install -e '{checkout}[{extra}]'" in result.stdout
    assert f"uv sync --extra {extra}" in result.stdout
    assert "docs/install.md" in result.stdout
    assert f"install 'rlmesh[{extra}]'" not in result.stdout


def test_the_install_hint_follows_where_rlmesh_came_from(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmesh import extras

    origins: list[Any] = [
        {"url": "https://example.org/lab/rlmesh.git",
         "vcs_info": {"vcs": "git", "commit_id": "abc123"}},
        {"url": "file:///opt/wheels/rlmesh-0.1.0-py3-none-any.whl", "archive_info": {}},
        None,
    ]
    hints = []
    for origin in origins:
        monkeypatch.setattr(extras, "_origin", lambda origin=origin: origin)
        hints.append(extras.install_hint("plot"))
    assert hints[0] == "pip install 'rlmesh[plot] @ git+https://example.org/lab/rlmesh.git@abc123'"
    assert hints[1] == ("pip install 'rlmesh[plot] @ "
                        "file:///opt/wheels/rlmesh-0.1.0-py3-none-any.whl'")
    assert "<this project's repository URL>" in hints[2] and "checkout>[plot]" in hints[2]


def test_torch_env_returns_tensors_and_accepts_tensor_actions(serve: Callable[..., Any]) -> None:
    torch = need("torch")
    import rlmesh.torch as rt

    server = serve(lambda: gym.make("CartPole-v1"))
    local = gym.make("CartPole-v1")
    with rt.RemoteEnv(server.address, device="cpu") as env:
        obs, _ = env.reset(seed=3)
        assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32
        np.testing.assert_array_equal(obs.numpy(), local.reset(seed=3)[0])
        for action in (torch.tensor(1), torch.tensor([0])[0], np.int64(1), 0):
            obs, reward, terminated, truncated, _ = env.step(action)
            expected = local.step(int(action))
            np.testing.assert_array_equal(obs.numpy(), expected[0])
            assert (reward, terminated, truncated) == expected[1:4]


def test_torch_tensors_are_never_overwritten_later(serve: Callable[..., Any]) -> None:
    need("torch")
    import rlmesh.torch as rt

    # Large observations travel through shared memory on this host: still never reused.
    server = serve(functools.partial(ImageEnv, 96, 96, 3))
    with rt.RemoteEnv(server.address) as env:
        env.reset(seed=0)
        held = [env.step(np.int64(a))[0] for a in (1, 2, 3)]
        for later in (0, 3, 1, 2):
            env.step(np.int64(later))
        for value, tensor in zip((1, 2, 3), held, strict=True):
            assert bool((tensor == value).all())
        held[0].add_(1)  # writable, and the user's own
        assert bool((held[0] == 2).all())


def test_torch_vector_env_batches_and_model(serve: Callable[..., Any]) -> None:
    torch = need("torch")
    import rlmesh.torch as rt

    server = serve(lambda: gym.make_vec("CartPole-v1", 3, vectorization_mode="sync"))
    with rt.RemoteVectorEnv(server.address) as env:
        obs, _ = env.reset(seed=0)
        assert isinstance(obs, torch.Tensor) and obs.shape == (3, 4)
        obs, rewards, terms, truncs, _ = env.step(torch.tensor([0, 1, 0]))
        assert rewards.dtype == torch.float64 and terms.dtype == torch.bool
        assert truncs.shape == (3,)
    calls = []

    def batch(observations: Any) -> Any:
        calls.append(type(observations))
        return (observations[:, 2] > 0).long()

    model = rt.Model(lambda o: (o[2] > 0).long(), predict_batch=batch)
    batched = rlmesh.run(model, server.address, seeds=[1, 2, 3, 4, 5])
    reference = rlmesh.run(rlmesh.numpy.Model(lambda o: int(o[2] > 0)),
                           gym.make("CartPole-v1"), seeds=[1, 2, 3, 4, 5])
    assert batched.rewards == reference.rewards
    assert calls and all(c is torch.Tensor for c in calls)
    single = rlmesh.run(rt.Model(lambda o: (o[2] > 0).long()), gym.make("CartPole-v1"),
                        seeds=[1, 2, 3, 4, 5])
    assert single.rewards == reference.rewards


def test_jax_env_vector_env_and_model(serve: Callable[..., Any]) -> None:
    jax = need("jax")
    import rlmesh.jax as rj

    server = serve(lambda: gym.make("CartPole-v1"))
    local = gym.make("CartPole-v1")
    with rj.RemoteEnv(server.address) as env:
        obs, _ = env.reset(seed=5)
        assert isinstance(obs, jax.Array)
        np.testing.assert_array_equal(np.asarray(obs), local.reset(seed=5)[0])
        obs, reward, *_ = env.step(jax.numpy.array(1))
        assert reward == 1.0
        np.testing.assert_array_equal(np.asarray(obs), local.step(1)[0])
    vector = serve(lambda: gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    with rj.RemoteVectorEnv(vector.address) as venv:
        obs, _ = venv.reset(seed=0)
        _, rewards, terms, _, _ = venv.step(jax.numpy.array([1, 0]))
        assert isinstance(obs, jax.Array) and isinstance(rewards, jax.Array)
        assert terms.dtype == jax.numpy.bool_
    model = rj.Model(lambda o: (o[2] > 0).astype(int))
    reference = rlmesh.run(rlmesh.numpy.Model(lambda o: int(o[2] > 0)),
                           gym.make("CartPole-v1"), seeds=[7, 8])
    assert rlmesh.run(model, server.address, seeds=[7, 8]).rewards == reference.rewards


@pytest.mark.timeout(120)
def test_cleanrl_style_example_trains_over_make_vec() -> None:
    need("torch")
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python",
                           "cleanrl_ppo.py")
    result = subprocess.run([sys.executable, example, "--total-timesteps", "4096",
                             "--num-envs", "4"], capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "update 8/8" in result.stdout and "final mean return" in result.stdout
