"""The Docker backend: :class:`DockerRunner` starts a sandbox's server in a container.

Two kinds of launch (see :mod:`rlmesh.sandbox.docker_source`):

* an env (``Launch.target`` an env id or ``module:callable``): an image holding this rlmesh and
  ``SandboxBuild.packages`` is built once (:mod:`rlmesh.sandbox.docker_image`) and its boot
  script serves the target, with the make keywords given at run time as JSON;
* an image (``Launch.target`` ``image://IMG`` or ``docker://IMG``): run as it is; its own
  entrypoint serves at ``RLMESH_ADDRESS``, and gets ``RLMESH_MAKE_KWARGS`` (JSON) and
  ``RLMESH_NUM_ENVS`` to read if it wants them (``python -m rlmesh.serve`` does).

Every container is hardened (:mod:`rlmesh.sandbox.docker_flags`), publishes its port on
127.0.0.1 only, and carries owner labels; containers of dead owners are removed at the next
start (:mod:`rlmesh.sandbox.docker_reap`). A start waits until the server answers a probe; after
each failed probe it asks Docker whether the container still runs, so one that exited fails at
once, with the last 50 lines of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import secrets
import threading
import time
from typing import Any

from rlmesh.client.probe import probe
from rlmesh.errors import RLMeshError, SandboxError
from rlmesh.sandbox.docker_engine import daemon_problem, docker
from rlmesh.sandbox.docker_flags import HARDENING, runtime_flags
from rlmesh.sandbox.docker_image import build_image
from rlmesh.sandbox.docker_reap import owner_labels, reap_orphans
from rlmesh.sandbox.docker_source import image_reference
from rlmesh.sandbox.runner import Launch, Runner, Running

__all__ = ["CONTAINER_PORT", "DockerRunner", "DockerRunning"]

CONTAINER_PORT = 50051
"""The port the server listens on inside the container (``RLMESH_ADDRESS`` says so)."""
_LOG_TAIL = 50
_live: set[DockerRunning] = set()
_live_lock = threading.Lock()


class DockerRunning(Running):
    """A sandbox container, as its owner sees it.

    Args:
        ident: The container id.
        address: ``127.0.0.1:PORT``, where its published port is.
        environment: The image's id.
    """

    def __init__(self, ident: str, address: str, environment: str, token: str) -> None:
        self.ident = ident
        self.address = address
        self.environment = environment
        self.token = token
        self._stopped = False
        with _live_lock:
            _live.add(self)

    def state(self) -> tuple[str, int]:
        """Docker's status of the container (``running``, ``exited``, ...) and exit code."""
        found = docker(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                        self.ident], check=False)
        status, _, code = found.stdout.strip().partition(" ")
        return (status or "removed"), int(code) if code.lstrip("-").isdigit() else -1

    def alive(self) -> bool:
        """Whether the container is still running."""
        return self.state()[0] == "running"

    def logs(self, tail: int = _LOG_TAIL) -> str:
        """The last ``tail`` lines the container printed (stdout and stderr)."""
        found = docker(["logs", "--tail", str(tail), self.ident], check=False)
        return (found.stdout + found.stderr).strip()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the container (SIGTERM, SIGKILL after ``timeout``) and remove it; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with _live_lock:
            _live.discard(self)
        grace = str(max(0, math.ceil(timeout)))
        docker(["stop", "-t", grace, self.ident], check=False, timeout=timeout + 30)
        docker(["rm", "-f", self.ident], check=False, timeout=60)


@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        left = list(_live)
    for running in left:
        with contextlib.suppress(Exception):
            running.stop(timeout=2.0)


class DockerRunner(Runner):
    """Starts sandbox servers in Docker containers.

    Args:
        repository: The repository built images are tagged in (``<repository>:<key>``).
        labels: Extra labels for every container (tests use them to find their own).
    """

    name = "docker"

    def __init__(self, *, repository: str = "rlmesh-sandbox",
                 labels: dict[str, str] | None = None) -> None:
        self.repository = repository
        self.labels = dict(labels or {})

    def start(self, launch: Launch, *, timeout: float) -> DockerRunning:
        """Build (or reuse) the image, run the container and return once it answers.

        Raises:
            SandboxError: No daemon, a failed build, or a server that exited or did not
                answer within ``timeout`` (with the tail of its log).
            ValueError: A malformed runtime option or source.
        """
        problem = daemon_problem()
        if problem is not None:
            raise SandboxError(f"the Docker backend cannot run: {problem}")
        if launch.build.compat is not None:
            raise SandboxError("SandboxBuild(compat=...) is served by the uv backend only; "
                               "use SandboxRuntime(backend='uv')")
        deadline = time.monotonic() + timeout
        flags = runtime_flags(launch.runtime)
        reap_orphans()
        image, env = self._image_and_env(launch, timeout)
        running = self._run(image, env, flags)
        try:
            _wait_ready(running, deadline)
        except BaseException:
            running.stop(timeout=1.0)
            raise
        return running

    def _image_and_env(self, launch: Launch, timeout: float) -> tuple[str, dict[str, str]]:
        address = f"0.0.0.0:{CONTAINER_PORT}"
        env = {"RLMESH_ADDRESS": address,
               "RLMESH_MAKE_KWARGS": json.dumps(dict(launch.make_kwargs)),
               "RLMESH_NUM_ENVS": str(launch.num_envs)}
        ref = image_reference(launch.target)
        if ref is not None:
            if not docker(["image", "inspect", ref], check=False).ok:
                raise SandboxError(f"the image {ref!r} is not available locally (nothing is "
                                   "pulled behind your back): `docker pull` or build it first")
            return ref, env
        if not launch.target:
            raise SandboxError("nothing to serve: Launch.target is empty")
        image = build_image(launch.build, repository=self.repository, timeout=timeout)
        env["RLMESH_SANDBOX_JSON"] = json.dumps({
            "target": launch.target, "address": address, "num_envs": launch.num_envs,
            "make_kwargs": dict(launch.make_kwargs), "imports": list(launch.build.imports)})
        return image.tag, env

    def _run(self, image: str, env: dict[str, str], flags: list[str]) -> DockerRunning:
        labels = {**self.labels, **owner_labels()}
        args = ["run", "-d", *HARDENING, "-p", f"127.0.0.1::{CONTAINER_PORT}", *flags]
        for key, value in sorted(labels.items()):
            args += ["--label", f"{key}={value}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        # A token of its own for the published port, handed over by name, not on a command line.
        token = secrets.token_urlsafe(24)
        args += ["--env", "RLMESH_TOKEN"]
        ident = docker([*args, image], timeout=120, secrets={"RLMESH_TOKEN": token}
                       ).stdout.strip()
        image_id = docker(["inspect", "--format", "{{.Image}}", ident], check=False)
        try:
            address = _published(ident)
        except SandboxError:
            docker(["rm", "-f", ident], check=False)
            raise
        return DockerRunning(ident, address, image_id.stdout.strip(), token)


def _published(ident: str) -> str:
    """The loopback address Docker published the container's port at."""
    out = docker(["port", ident, f"{CONTAINER_PORT}/tcp"]).stdout.split()
    for entry in out:
        host, _, port = entry.rpartition(":")
        if host == "127.0.0.1" and port.isdigit():
            return f"127.0.0.1:{port}"
    raise SandboxError(f"the container's port was not published on 127.0.0.1: {out}")


def _wait_ready(running: DockerRunning, deadline: float) -> dict[str, Any]:
    """Probe until the server answers; fail fast once the container has exited."""
    while True:
        try:
            return probe(running.address, timeout=2.0, token=running.token)
        except (RLMeshError, OSError) as exc:
            last = exc
        status, code = running.state()
        if status != "running":
            raise SandboxError(f"the sandbox container {running.ident[:12]} is {status} (exit "
                               f"code {code}) before serving; its log ends:\n{running.logs()}")
        if time.monotonic() > deadline:
            raise SandboxError(f"the sandbox server did not answer within the start timeout "
                               f"({last}); its log ends:\n{running.logs()}")
        time.sleep(0.2)
