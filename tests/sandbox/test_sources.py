"""Sources, misplaced keywords and refusals: decided before any process starts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import rlmesh
from rlmesh.errors import SandboxError
from rlmesh.numpy import SandboxBuild, SandboxEnv, SandboxRuntime, SandboxVectorEnv
from rlmesh.sandbox.runner import Launch
from rlmesh.sandbox.serve_args import serve_argv
from rlmesh.sandbox.sources import resolve_source
from rlmesh.sandbox.uvtool import find_uv
from rlmesh.sandbox.wheel import rlmesh_package


@pytest.mark.parametrize(("source", "kind", "resolved", "target"), [
    ("CartPole-v1", "env", "gym://CartPole-v1", "CartPole-v1"),
    ("gym://CartPole-v1", "env", "gym://CartPole-v1", "CartPole-v1"),
    ("ale_py:ALE/Pong-v5", "env", "gym://ale_py:ALE/Pong-v5", "ale_py:ALE/Pong-v5"),
    ("my_envs:make_env", "env", "gym://my_envs:make_env", "my_envs:make_env"),
    ("pkg.sub:factory.make", "env", "gym://pkg.sub:factory.make", "pkg.sub:factory.make"),
    ("python:3.11-slim", "image", "image://python:3.11-slim", "python:3.11-slim"),
    ("ghcr.io/org/sim:1.0", "image", "image://ghcr.io/org/sim:1.0", "ghcr.io/org/sim:1.0"),
    ("img@sha256:abc", "image", "image://img@sha256:abc", "img@sha256:abc"),
    ("docker://my_envs:latest", "image", "image://my_envs:latest", "my_envs:latest"),
    ("image://sim", "image", "image://sim", "sim"),
])
def test_sources_resolve(source: str, kind: str, resolved: str, target: str) -> None:
    got = resolve_source(source)
    assert (got.kind, got.resolved, got.target, got.requested) == (kind, resolved, target, source)


@pytest.mark.parametrize("source", ["", "  ", "ftp://x", "docker://", "gym://"])
def test_bad_sources_are_refused(source: str) -> None:
    with pytest.raises(ValueError):
        resolve_source(source)


def test_hf_sources_are_not_supported_yet() -> None:
    with pytest.raises(SandboxError, match="hf://"):
        resolve_source("hf://lerobot/cartpole-env:cartpole_suite/0")


@pytest.mark.parametrize(("keyword", "record"), [
    ("packages", "SandboxBuild"), ("imports", "SandboxBuild"), ("rlmesh_package", "SandboxBuild"),
    ("gpus", "SandboxRuntime"), ("volumes", "SandboxRuntime"), ("backend", "SandboxRuntime"),
])
def test_misplaced_keywords_name_their_record(keyword: str, record: str) -> None:
    with pytest.raises(TypeError, match=rf"{keyword}.*{record}\({keyword}=") as raised:
        SandboxEnv("CartPole-v1", **{keyword: ["x"]})
    assert "build=" in str(raised.value) or "runtime=" in str(raised.value)
    with pytest.raises(TypeError, match=record):
        SandboxVectorEnv("CartPole-v1", 2, **{keyword: ["x"]})
    with pytest.raises(TypeError, match=record):
        rlmesh.SandboxEnv("CartPole-v1", **{keyword: ["x"]})


def test_image_sources_need_docker_on_the_uv_backend() -> None:
    with pytest.raises(SandboxError, match="container image"):
        SandboxEnv("docker://sim:1.0", runtime=SandboxRuntime(backend="uv"))


def test_docker_only_options_are_refused_by_uv(sandbox_cache: object) -> None:
    with pytest.raises(SandboxError, match=r"gpus.*Docker backend only"):
        SandboxEnv("CartPole-v1", runtime=SandboxRuntime(backend="uv", gpus="all"))
    with pytest.raises(SandboxError, match="base_image"):
        SandboxEnv("CartPole-v1", build=SandboxBuild(base_image="python:3.11"),
                   runtime=SandboxRuntime(backend="uv"))


def test_vector_env_needs_two_copies() -> None:
    with pytest.raises(ValueError, match="num_envs >= 2"):
        SandboxVectorEnv("CartPole-v1", 1)


def test_make_keywords_must_be_json() -> None:
    launch = Launch("env", "CartPole-v1", make_kwargs={"level": object()})
    with pytest.raises(TypeError, match="JSON"):
        serve_argv(launch, "/nonexistent")
    launch = Launch("env", "m:f", make_kwargs={"level": 3}, num_envs=4,
                    build=SandboxBuild(imports=["ale_py"]))
    argv = serve_argv(launch, "/d")
    assert argv[:2] == ["serve", "m:f"]
    assert argv[argv.index("--kwargs") + 1] == '{"level": 3}'
    assert argv[argv.index("--num-envs") + 1] == "4"
    assert argv[argv.index("--import") + 1] == "ale_py"
    assert argv[argv.index("--address") + 1] == "unix:///d/env.sock"


def test_missing_uv_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMESH_UV", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SandboxError, match="pip install uv"):
        find_uv()
    monkeypatch.setenv("RLMESH_UV", "/nonexistent/uv")
    with pytest.raises(SandboxError, match="RLMESH_UV"):
        find_uv()


def test_rlmesh_package_choices(tmp_path: object) -> None:
    with pytest.raises(SandboxError, match="no such wheel"):
        rlmesh_package("/nonexistent/rlmesh-0.1.0-py3-none-any.whl")
    given = rlmesh_package("rlmesh @ file:///src/rlmesh")
    assert given.requirement == "rlmesh @ file:///src/rlmesh"
    assert given.identity == "requirement:rlmesh @ file:///src/rlmesh"


def test_the_checkout_s_wheel_is_pure_python(sandbox_cache: Path) -> None:
    # The checkout's own install may carry the compiled slot steps; the wheel a sandbox
    # installs never does, so it installs under any Python version a sandbox runs.
    package = rlmesh_package()
    wheel = Path(package.requirement)
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as contents:
        names = contents.namelist()
    assert "rlmesh/transport/fastslots.py" in names
    assert not [name for name in names if name.endswith((".so", ".pyd"))]
