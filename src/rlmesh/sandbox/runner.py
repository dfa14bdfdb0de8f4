"""The seam between a sandbox and the thing that runs it: :class:`Runner`.

A runner prepares an artifact once (a uv environment or a container image, cached by a key
of everything that shapes it) and starts a server process from it. Both backends serve the
same way: the process inside runs rlmesh's own server (``python -m rlmesh serve`` or
``python -m rlmesh.serve``), so every client works with it unchanged.

``rlmesh.sandbox.uv`` and ``rlmesh.sandbox.docker`` implement it; the sandbox sessions
(``SandboxEnv`` and friends) pick one by :attr:`SandboxRuntime.backend`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlmesh.sandbox.options import SandboxBuild, SandboxRuntime

__all__ = ["Launch", "Runner", "Running"]


@dataclass(frozen=True)
class Launch:
    """What to serve inside the sandbox.

    Args:
        kind: ``"env"`` or ``"model"``.
        target: What ``rlmesh serve`` takes: an env id or ``module:callable``; empty for an
            image that brings its own entrypoint.
        make_kwargs: Keywords for the env's ``make`` (sent as JSON, never pickled).
        num_envs: Copies served as one vector env (1: a single env).
        vectorization_mode: ``"sync"`` / ``"async"`` / ``None`` as ``rlmesh serve`` takes it.
        build: How the stack is built.
        runtime: How the process is run.
    """

    kind: str
    target: str
    make_kwargs: Mapping[str, Any] = field(default_factory=dict)
    num_envs: int = 1
    vectorization_mode: str | None = None
    build: SandboxBuild = field(default_factory=SandboxBuild)
    runtime: SandboxRuntime = field(default_factory=SandboxRuntime)


class Running(abc.ABC):
    """A started sandbox server, as its owner sees it."""

    address: str
    """Where its server listens (a ``unix://`` path or ``127.0.0.1:PORT``)."""
    ident: str
    """Its container id, or ``pid:<n>`` for a process."""
    environment: str
    """The uv environment's directory or the image's id."""
    token: str | None = None
    """The token its server requires (a container's published port gets one of its own; a
    uv server listens on a unix socket in a private directory and needs none)."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the server process is still running."""

    @abc.abstractmethod
    def logs(self, tail: int = 50) -> str:
        """The last ``tail`` lines of its output (for errors)."""

    @abc.abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout``) and remove what it left."""


class Runner(abc.ABC):
    """Builds a sandbox's stack once and starts servers from it."""

    name: str
    """``"uv"`` or ``"docker"``."""

    @abc.abstractmethod
    def start(self, launch: Launch, *, timeout: float) -> Running:
        """Prepare the artifact (cached) and start a server; return when it answers.

        Raises:
            rlmesh.errors.SandboxError: The stack cannot be built (with the installer's own
                message) or the server did not come up (with the tail of its log).
        """
