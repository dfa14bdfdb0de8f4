"""Sandbox sessions: a remote env, vector env or model that owns its server.

``SandboxEnv("CartPole-v1", build=SandboxBuild(packages=["numpy<2"]))`` builds (or reuses)
the stack, starts the server in it, and is then an ordinary remote client of it: a
``gymnasium.Env`` with ``reset``, ``step``, ``render`` and the rest, plus
:attr:`SandboxSession.sandbox`. Closing it (or leaving its ``with`` block) ends the session
and stops the server.

The classes here return numpy values (they are ``rlmesh.numpy``'s). The other faces build
theirs with :func:`sandbox_classes`, passing their own remote client classes in: this layer
never imports a face.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from rlmesh.client.env import RemoteEnv
from rlmesh.models.remote import RemoteModel
from rlmesh.sandbox.options import SandboxBuild, SandboxInfo, SandboxRuntime
from rlmesh.sandbox.runner import Running
from rlmesh.sandbox.start import start_sandbox
from rlmesh.vector.env import RemoteVectorEnv

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "SandboxClasses",
    "SandboxEnv",
    "SandboxModel",
    "SandboxSession",
    "SandboxVectorEnv",
    "sandbox_classes",
]

DEFAULT_CONNECT_TIMEOUT_SECONDS = 30.0
"""Seconds the client may take to connect once the server said it is ready."""


class SandboxSession:
    """What every sandbox session adds to its remote client: the server it owns."""

    _sandbox_running: Running | None = None
    _sandbox_info: SandboxInfo | None = None
    _sandbox_stop: weakref.finalize[Any, Any] | None = None

    def _start_sandbox(self, kind: str, source: str, build: SandboxBuild | None,
                       runtime: SandboxRuntime | None, params: dict[str, Any],
                       num_envs: int = 1, vectorization_mode: str | None = None) -> str:
        """Start the server; returns its address. It is stopped with this object.

        The client connects with :attr:`_sandbox_token`, the token the server requires.
        """
        running, info = start_sandbox(kind, source, build=build, runtime=runtime,
                                      params=params, num_envs=num_envs,
                                      vectorization_mode=vectorization_mode)
        self._sandbox_running, self._sandbox_info = running, info
        self._sandbox_stop = weakref.finalize(self, running.stop)
        return running.address

    @property
    def _sandbox_token(self) -> str | None:
        running = self._sandbox_running
        return running.token if running is not None else None

    @property
    def sandbox(self) -> SandboxInfo:
        """Where the sandbox's server runs and what it was made from."""
        if self._sandbox_info is None:
            raise AttributeError("this sandbox session never started")
        return self._sandbox_info

    def _attach(self, connect: Callable[[], None]) -> None:
        """Run the client's own ``__init__`` (``connect``); stop the server if it fails."""
        try:
            connect()
        except BaseException:
            self._stop_sandbox()
            raise

    def _stop_sandbox(self) -> None:
        """Stop the server (idempotent)."""
        if self._sandbox_stop is not None:
            self._sandbox_stop()


class SandboxEnv(SandboxSession, RemoteEnv):
    """A remote env served from its own sandbox, which it owns.

    Args:
        source: An env id (``"CartPole-v1"``, ``"gym://CartPole-v1"``), a
            ``module:callable``, or a container image (``"docker://img:tag"``; Docker
            backend).
        build: How the stack is built (:class:`~rlmesh.SandboxBuild`: its packages, ...).
        runtime: How the server runs (:class:`~rlmesh.SandboxRuntime`: the backend, ...).
        connect_timeout_seconds: Seconds to connect once the server is ready.
        **params: Keywords for the env's ``make`` (JSON values), such as
            ``render_mode="rgb_array"``.

    Raises:
        TypeError: A :class:`SandboxBuild` or :class:`SandboxRuntime` field was passed as a
            plain keyword (the message names the record it belongs in).
        SandboxError: The stack could not be built (the installer's message) or the server
            did not start (the tail of its log).
    """

    def __init__(self, source: str, /, *, build: SandboxBuild | None = None,
                 runtime: SandboxRuntime | None = None,
                 connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
                 **params: Any) -> None:
        address = self._start_sandbox("env", source, build, runtime, params)
        self._attach(lambda: super(SandboxSession, self).__init__(
            address, connect_timeout_seconds=connect_timeout_seconds,
            token=self._sandbox_token))

    def close(self) -> None:
        """End the session and stop the sandbox's server. Idempotent."""
        try:
            super().close()
        finally:
            self._stop_sandbox()

    def _client_class(self) -> type[RemoteEnv]:
        """A plain client of the face (``gymnasium.make(env.spec)`` joins this sandbox).

        Such an env is another session to this sandbox's server: it works while this
        session keeps the server running.
        """
        for cls in type(self).__mro__:
            if issubclass(cls, RemoteEnv) and not issubclass(cls, SandboxSession):
                return cls
        return RemoteEnv  # pragma: no cover - every SandboxEnv derives from a RemoteEnv


class SandboxVectorEnv(SandboxSession, RemoteVectorEnv):
    """A remote vector env of ``num_envs`` copies served from a sandbox it owns.

    Args:
        source: As for :class:`SandboxEnv`.
        num_envs: Copies of the env, served as one ``SyncVectorEnv`` (at least 2).
        vectorization_mode: ``None`` or ``"sync"``.
        build: As for :class:`SandboxEnv`.
        runtime: As for :class:`SandboxEnv`.
        connect_timeout_seconds: As for :class:`SandboxEnv`.
        **params: Keywords for each copy's ``make`` (JSON values).

    Raises:
        ValueError: ``num_envs`` is less than 2.
        TypeError: As for :class:`SandboxEnv`.
        SandboxError: As for :class:`SandboxEnv`.
    """

    def __init__(self, source: str, /, num_envs: int, *,
                 vectorization_mode: str | None = None, build: SandboxBuild | None = None,
                 runtime: SandboxRuntime | None = None,
                 connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
                 **params: Any) -> None:
        if not isinstance(num_envs, int) or num_envs < 2:
            raise ValueError(f"SandboxVectorEnv needs num_envs >= 2 (got {num_envs!r}); use "
                             "SandboxEnv for one env")
        address = self._start_sandbox("env", source, build, runtime, params,
                                      num_envs=num_envs, vectorization_mode=vectorization_mode)
        self._attach(lambda: super(SandboxSession, self).__init__(
            address, connect_timeout_seconds=connect_timeout_seconds,
            token=self._sandbox_token))

    def close_extras(self, **kwargs: Any) -> None:
        """End the session and stop the sandbox's server."""
        try:
            super().close_extras(**kwargs)
        finally:
            self._stop_sandbox()


class SandboxModel(SandboxSession, RemoteModel):
    """A remote model served from a sandbox it owns (``rlmesh serve-model SOURCE`` inside).

    Args:
        source: The policy as ``module:callable`` (an rlmesh ``Model``, ``Model`` subclass
            or function), or a container image serving a model (Docker backend).
        runtime: How the server runs.
        **params: ``build=SandboxBuild(...)`` for the stack; nothing else is taken.

    Raises:
        TypeError: A keyword other than ``build``.
        SandboxError: As for :class:`SandboxEnv`.
    """

    def __init__(self, source: str, /, *, runtime: SandboxRuntime | None = None,
                 **params: Any) -> None:
        build = params.pop("build", None)
        if params:
            raise TypeError(f"SandboxModel takes build= and runtime= only, not "
                            f"{sorted(params)}")
        address = self._start_sandbox("model", source, build, runtime, {})
        self._attach(lambda: super(SandboxSession, self).__init__(
            address, token=self._sandbox_token))

    def close(self) -> None:
        """Close the connections and stop the sandbox's server. Idempotent."""
        try:
            super().close()
        finally:
            self._stop_sandbox()


class SandboxClasses(NamedTuple):
    """A face's three sandbox session classes."""

    SandboxEnv: type[SandboxEnv]
    SandboxVectorEnv: type[SandboxVectorEnv]
    SandboxModel: type[SandboxModel]


def _combine(base: type[Any], client: type[Any], module: str) -> type[Any]:
    if issubclass(base, client):
        bases: tuple[type[Any], ...] = (base,)
    else:
        bases = (base, client)
    return type(base.__name__, bases, {"__module__": module, "__doc__": base.__doc__})


def sandbox_classes(env: type[RemoteEnv], vector_env: type[RemoteVectorEnv],
                    model: type[RemoteModel], *, module: str) -> SandboxClasses:
    """Sandbox session classes whose values are those of the given remote clients.

    Args:
        env: The face's ``RemoteEnv`` (a subclass of the numpy one).
        vector_env: Its ``RemoteVectorEnv``.
        model: Its ``RemoteModel``.
        module: The face's module name (shown in the classes' ``repr``).
    """
    return SandboxClasses(
        cast("type[SandboxEnv]", _combine(SandboxEnv, env, module)),
        cast("type[SandboxVectorEnv]", _combine(SandboxVectorEnv, vector_env, module)),
        cast("type[SandboxModel]", _combine(SandboxModel, model, module)))
