"""Bring your own container: the documented example image, built and served for real."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlmesh.numpy import RemoteEnv
from rlmesh.sandbox.docker_engine import docker
from rlmesh.sandbox.docker_source import image_reference
from rlmesh.sandbox.sources import resolve_source
from tests.support import docker as support

pytestmark = pytest.mark.timeout(300)
support.require_docker()

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "byo_container"


@pytest.fixture(scope="module")
def byo_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example's image, built as its Dockerfile says (site/ made with uv, offline first)."""
    context = tmp_path_factory.mktemp("byo") / "context"
    shutil.copytree(EXAMPLE, context)
    install = ["uv", "pip", "install", "--quiet", "--target", str(context / "site"),
               "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
               str(ROOT)]
    if subprocess.run([*install, "--offline"], capture_output=True, timeout=300).returncode:
        subprocess.run(install, check=True, capture_output=True, timeout=300)
    tag = f"{support.BYO_REPOSITORY}:{support.RUN_ID}"
    docker(["build", "--network", "none", "--quiet", "--build-arg",
            f"BASE_IMAGE={support.base_image()}", "--label",
            f"{support.TEST_LABEL}={support.RUN_ID}", "-t", tag, str(context)], timeout=300)
    yield tag
    support.remove_test_artifacts()


def test_the_example_image_serves_its_factory_with_run_time_keywords(byo_image: str) -> None:
    source = resolve_source(byo_image)
    assert (source.kind, source.resolved) == ("image", f"image://{byo_image}")
    running = support.runner().start(
        support.launch(source.resolved, make_kwargs={"length": 4}), timeout=120)
    try:
        found = support.inspect(running.ident)
        assert found["HostConfig"]["CapDrop"] == ["ALL"]
        with RemoteEnv(running.address, token=running.token) as env:
            assert env.observation_space.shape == (4,)  # RLMESH_MAKE_KWARGS reached make_env
            check_env(env, skip_render_check=True)
            obs, _ = env.reset(seed=0)
            np.testing.assert_array_equal(obs, [1, 0, 0, 0])
            rewards = [env.step(1)[1] for _ in range(3)]
            assert rewards == [0.0, 0.0, 1.0]
    finally:
        running.stop()
    assert not support.exists(running.ident)


def test_sources_are_classified_without_guessing_an_image_for_an_env() -> None:
    cases = {
        "CartPole-v1": ("env", "CartPole-v1", "gym://CartPole-v1"),
        "gym://CartPole-v1": ("env", "CartPole-v1", "gym://CartPole-v1"),
        "pkg:Env-v0": ("env", "pkg:Env-v0", "gym://pkg:Env-v0"),
        "mypkg.envs:make_env": ("env", "mypkg.envs:make_env", "gym://mypkg.envs:make_env"),
        "my-env:latest": ("image", "my-env:latest", "image://my-env:latest"),
        "docker://other:1": ("image", "other:1", "image://other:1"),
        "image://other:1": ("image", "other:1", "image://other:1"),
    }
    for given, expected in cases.items():
        found = resolve_source(given)
        assert (found.kind, found.target, found.resolved) == expected, given
    for bad in ("", "hf2://x", "docker://"):
        with pytest.raises(ValueError):
            resolve_source(bad)
    with pytest.raises(ValueError, match="image reference"):
        image_reference("image://Not An Image")
