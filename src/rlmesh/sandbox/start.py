"""Starting a sandbox: checking the arguments, picking the backend, starting the server.

The sessions (:mod:`rlmesh.sandbox.session`) call :func:`start_sandbox`; it returns the
running server and the :class:`~rlmesh.sandbox.options.SandboxInfo` a session reports.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rlmesh.errors import SandboxError
from rlmesh.sandbox.options import SandboxBuild, SandboxInfo, SandboxRuntime, misplaced_field
from rlmesh.sandbox.runner import Launch, Runner, Running
from rlmesh.sandbox.sources import Source, resolve_source
from rlmesh.sandbox.uv import UvRunner

__all__ = ["check_params", "select_runner", "start_sandbox"]

_RECORDS = {"build": "SandboxBuild", "runtime": "SandboxRuntime"}


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse a build or runtime field given as a plain keyword, naming its record.

    Raises:
        TypeError: ``params`` holds a field of :class:`SandboxBuild` or
            :class:`SandboxRuntime` (``packages=[...]`` belongs in
            ``build=SandboxBuild(packages=[...])``).
    """
    for name in params:
        group = misplaced_field(name)
        if group is not None:
            record = _RECORDS[group]
            raise TypeError(f"{name!r} is a field of {record}, not a make keyword: pass "
                            f"{group}={record}({name}=...)")


def _docker_runner() -> Runner:
    try:
        module = importlib.import_module("rlmesh.sandbox.docker")
    except ModuleNotFoundError as exc:
        if exc.name != "rlmesh.sandbox.docker":
            raise
        raise SandboxError("the Docker sandbox backend is not part of this rlmesh yet; use "
                           "an env source with SandboxRuntime(backend='uv')") from exc
    runner: Runner = module.DockerRunner()
    return runner


def select_runner(source: Source, runtime: SandboxRuntime) -> Runner:
    """The runner for ``source`` under ``runtime.backend`` (``auto``: Docker for images).

    Raises:
        SandboxError: An image source on the uv backend, or no Docker backend.
    """
    backend = runtime.backend
    if backend == "auto":
        backend = "docker" if source.kind == "image" else "uv"
    if backend == "uv":
        if source.kind == "image":
            raise SandboxError(f"{source.requested!r} is a container image; the uv backend "
                               "serves env ids and module:callable targets")
        return UvRunner()
    return _docker_runner()


def start_sandbox(kind: str, source: str, *, build: SandboxBuild | None,
                  runtime: SandboxRuntime | None, params: Mapping[str, Any],
                  num_envs: int = 1, vectorization_mode: str | None = None
                  ) -> tuple[Running, SandboxInfo]:
    """Start a sandbox server for ``source``; return it and its info once it answers.

    Args:
        kind: ``"env"`` or ``"model"``.
        source: The sandbox source (see :mod:`rlmesh.sandbox.sources`).
        build: How its stack is built (default ``SandboxBuild()``).
        runtime: How it is run (default ``SandboxRuntime()``).
        params: The env's make keywords (JSON values).
        num_envs: Copies served as one vector env.
        vectorization_mode: ``None`` or ``"sync"``.

    Raises:
        TypeError: A build or runtime field among ``params``, or a record of the wrong type.
        SandboxError: The stack or the server could not be started.
    """
    check_params(params)
    build = SandboxBuild() if build is None else build
    runtime = SandboxRuntime() if runtime is None else runtime
    if not isinstance(build, SandboxBuild) or not isinstance(runtime, SandboxRuntime):
        raise TypeError("build= takes a SandboxBuild and runtime= a SandboxRuntime")
    resolved = resolve_source(source)
    runner = select_runner(resolved, runtime)
    target = resolved.resolved if resolved.kind == "image" else resolved.target
    launch = Launch(kind=kind, target=target, make_kwargs=dict(params),
                    num_envs=num_envs, vectorization_mode=vectorization_mode, build=build,
                    runtime=runtime)
    running = runner.start(launch, timeout=runtime.start_timeout_seconds)
    info = SandboxInfo(requested_source=source, resolved_source=resolved.resolved,
                       address=running.address, container_id=running.ident,
                       backend=runner.name, environment=running.environment)
    return running, info
