"""Docker for the sandbox tests: skip without a daemon, label and remove what tests create.

The tests need a Docker daemon and a local base image with python3 (``.ci/docker-setup``
makes both; no registry is used). Without them the tests skip with the reason, unless
``RLMESH_REQUIRE_DOCKER=1`` (CI), where they fail instead. Everything a test run creates
carries the label ``rlmesh.test.run=<run id>`` or lives in the test repositories below, and
:func:`remove_test_artifacts` removes it.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest

from rlmesh.sandbox.docker import DockerRunner
from rlmesh.sandbox.docker_engine import daemon_problem, docker
from rlmesh.sandbox.options import SandboxBuild
from rlmesh.sandbox.runner import Launch

RUN_ID = uuid.uuid4().hex[:12]
TEST_LABEL = "rlmesh.test.run"
REPOSITORY = "rlmesh-sandbox-test"
"""Sandbox images built by the tests (removed at the end of the run)."""
BYO_REPOSITORY = "rlmesh-byo-test"


def base_image() -> str:
    """The base image the tests build on: ``RLMESH_SANDBOX_BASE_IMAGE`` (as in CI), else the
    one ``.ci/docker-setup`` builds."""
    return os.environ.get("RLMESH_SANDBOX_BASE_IMAGE") or "rlmesh-base:bookworm"


def launch(target: str, **fields: Any) -> Launch:
    """A :class:`Launch` of ``target`` built on :func:`base_image`."""
    return Launch("env", target, build=SandboxBuild(base_image=base_image()), **fields)


def require_docker() -> None:
    """Skip (or, with ``RLMESH_REQUIRE_DOCKER=1``, fail) without a daemon and base image."""
    problem = daemon_problem()
    if problem is None and not docker(["image", "inspect", base_image()], check=False).ok:
        problem = (f"the base image {base_image()!r} is not present (run .ci/docker-setup, "
                   "or name another one in RLMESH_SANDBOX_BASE_IMAGE)")
    if problem is None:
        return
    if os.environ.get("RLMESH_REQUIRE_DOCKER") == "1":
        pytest.fail(f"RLMESH_REQUIRE_DOCKER=1 but Docker cannot be used: {problem}")
    pytest.skip(f"no usable Docker: {problem}", allow_module_level=True)


def runner() -> DockerRunner:
    """A runner whose containers carry this run's label and whose images are test images."""
    return DockerRunner(repository=REPOSITORY, labels={TEST_LABEL: RUN_ID})


def inspect(ident: str) -> dict[str, Any]:
    """``docker inspect`` of one container or image, parsed."""
    found: list[dict[str, Any]] = json.loads(docker(["inspect", ident]).stdout)
    return found[0]


def exists(ident: str) -> bool:
    """Whether Docker still knows a container or image."""
    return docker(["inspect", ident], check=False).ok


def remove_test_artifacts() -> None:
    """Remove this run's containers and every image of the test repositories."""
    containers = docker(["ps", "-aq", "--filter", f"label={TEST_LABEL}={RUN_ID}"]).stdout.split()
    if containers:
        docker(["rm", "-f", *containers], check=False, timeout=120)
    for repository in (REPOSITORY, BYO_REPOSITORY):
        images = docker(["images", "-q", repository]).stdout.split()
        if images:
            docker(["rmi", "-f", *sorted(set(images))], check=False, timeout=120)

