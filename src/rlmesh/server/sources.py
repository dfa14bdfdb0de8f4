"""Where a server's sessions get what they serve, and who answers their requests.

A :class:`Source` is the seam between the server and what it serves: it hands each session a
resource (an env, a model...) and the request handler for it. :class:`EnvSource` serves envs:
one shared instance, or a factory with one env a session; the model source is
:class:`rlmesh.models.serve.ModelSource`. The server itself knows neither.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlmesh import protocol as P
from rlmesh.errors import EnvBusyError
from rlmesh.server.env_ops import env_handlers
from rlmesh.wire.foreign import check_servable
from rlmesh.wire.lenient import sanitize
from rlmesh.wire.schema import space_to_schema

if TYPE_CHECKING:
    from rlmesh.server.options import ServeOptions
    from rlmesh.server.session import Session

log = logging.getLogger("rlmesh.server")

__all__ = ["EnvFactory", "EnvSource", "Handler", "Source", "describe", "is_env_like",
           "is_vector_env"]

EnvFactory = Callable[[], Any]
Handler = Callable[[list[Any]], None]
"""Answers one request ``[op, request_id, *args]`` (through the session's replies)."""


class Source(abc.ABC):
    """What a server serves: its contract, a resource per session, and their request handlers.

    Attributes:
        contract: The fields of the handshake contract that describe what is served.
        noun: What error messages call the served thing (``"env"``, ``"model"``).
    """

    contract: dict[str, Any]
    noun = "env"

    @property
    @abc.abstractmethod
    def busy(self) -> bool:
        """Whether a new session would be refused as busy now (for health probes)."""

    @property
    @abc.abstractmethod
    def shared(self) -> bool:
        """Whether every session shares one resource (it cannot be rebuilt or forked)."""

    @abc.abstractmethod
    def acquire(self) -> Any:
        """The resource of a new session.

        Raises:
            EnvBusyError: If it cannot be lent now.
        """

    @abc.abstractmethod
    def release(self, resource: Any) -> None:
        """Take back a session's resource when the session ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything (the server is shutting down). Idempotent."""

    @abc.abstractmethod
    def handlers(self, session: Session) -> dict[int, Handler]:
        """The request handlers of ``session``, by op code.

        PING, CLOSE and SHUTDOWN are the session's own.
        """

    def capabilities(self, options: ServeOptions) -> list[str]:
        """The protocol capabilities this source offers (in the contract)."""
        return []


def is_env_like(obj: Any) -> bool:
    """Whether ``obj`` has the env surface rlmesh serves (spaces, ``reset``, ``step``)."""
    return all(hasattr(obj, name) for name in ("observation_space", "action_space", "reset",
                                               "step"))


def is_vector_env(obj: Any) -> bool:
    """Whether ``obj`` looks like a Gymnasium vector env."""
    return hasattr(obj, "num_envs") and hasattr(obj, "single_observation_space")


def describe(env: Any) -> dict[str, Any]:
    """Build the contract fields that come from the env itself.

    Raises:
        UnsupportedSpaceError: If a space has no wire schema, or the env comes from an API
            rlmesh does not serve (PettingZoo, the legacy ``gym`` package).
    """
    check_servable(env)
    spec = getattr(env, "spec", None)
    spec_map = None
    if spec is not None and getattr(spec, "id", None):
        spec_map = {
            "id": str(spec.id),
            "max_episode_steps": spec.max_episode_steps,
            "reward_threshold": spec.reward_threshold,
            "nondeterministic": bool(spec.nondeterministic),
        }
    metadata = dict(getattr(env, "metadata", None) or {})
    autoreset = metadata.get("autoreset_mode")
    if autoreset is not None and hasattr(autoreset, "value"):
        metadata["autoreset_mode"] = str(autoreset.value)  # an enum: send its value
    contract = {
        "kind": "env",
        "observation_space": space_to_schema(env.observation_space),
        "action_space": space_to_schema(env.action_space),
        "num_envs": 1,
        "render_mode": getattr(env, "render_mode", None),
        "metadata": sanitize(metadata),
        "spec": sanitize(spec_map),
    }
    if is_vector_env(env):
        contract.update(
            kind="vector_env",
            num_envs=int(env.num_envs),
            single_observation_space=space_to_schema(env.single_observation_space),
            single_action_space=space_to_schema(env.single_action_space),
        )
    return contract


class EnvSource(Source):
    """Hands envs to sessions.

    An env **instance** is lent to one session at a time; a second concurrent session gets
    :class:`~rlmesh.errors.EnvBusyError` immediately. A **factory** (a zero-argument callable
    or a registered Gymnasium id) builds a fresh env for every session, which the session
    closes when it ends. The first env a factory builds is used to describe the contract and
    is handed to the first session.
    """

    def __init__(self, env_or_factory: Any) -> None:
        self._lock = threading.Lock()
        self._factory: EnvFactory | None = None
        self._instance: Any = None
        self._instance_held = False
        self._spare: Any = None
        self._closed = False
        if isinstance(env_or_factory, str):
            env_id = env_or_factory
            self._factory = lambda: gym.make(env_id)
        elif isinstance(env_or_factory, type) or not is_env_like(env_or_factory):
            if not callable(env_or_factory):
                check_servable(env_or_factory)
                raise TypeError(
                    "EnvServer needs a Gymnasium env, an object with observation_space, "
                    "action_space, reset and step, a zero-argument factory, or a registered "
                    f"env id; got {type(env_or_factory).__qualname__}"
                )
            self._factory = env_or_factory
        else:
            self._instance = env_or_factory
        prototype = self._instance if self._factory is None else self._build()
        try:
            self.contract = describe(prototype)
        except BaseException:
            if self._factory is not None:
                _close_quietly(prototype)
            raise
        if self._factory is not None:
            self._spare = prototype

    @property
    def factory(self) -> EnvFactory:
        """The env factory (``TypeError`` for a shared instance)."""
        if self._factory is None:
            raise TypeError("this source serves an env instance, not a factory")
        return self._factory

    @property
    def busy(self) -> bool:
        """Whether the shared instance is lent to a session (always False for a factory)."""
        return self._factory is None and self._instance_held

    @property
    def shared(self) -> bool:
        """Whether one env instance is shared by successive sessions."""
        return self._factory is None

    def _build(self) -> Any:
        assert self._factory is not None
        env = self._factory()
        try:
            check_servable(env)
        except BaseException:
            _close_quietly(env)
            raise
        if not is_env_like(env):
            raise TypeError(f"the env factory returned {type(env).__qualname__}, not an env")
        return env

    def acquire(self) -> Any:
        """Lend an env to a new session.

        Raises:
            EnvBusyError: If the shared instance is held by another session.
            Exception: Whatever the factory raises.
        """
        with self._lock:
            if self._closed:
                raise EnvBusyError("the server is shutting down")
            if self._factory is None:
                if self._instance_held:
                    raise EnvBusyError(
                        "this endpoint serves a single env instance and another session is "
                        "using it; serve a factory to give every client its own env"
                    )
                self._instance_held = True
                return self._instance
            if self._spare is not None:
                env, self._spare = self._spare, None
                return env
        return self._build()

    def handlers(self, session: Session) -> dict[int, Handler]:
        """STEP, RESET, RENDER and the attribute ops, on the session's env."""
        return env_handlers(session)

    def capabilities(self, options: ServeOptions) -> list[str]:
        """Remote attribute access, unless the server turned it off."""
        return [P.CAP_ATTRIBUTES] if options.remote_attributes else []

    def release(self, env: Any) -> None:
        """Take an env back when its session ends (closing it if a factory built it)."""
        if self._factory is None:
            with self._lock:
                self._instance_held = False
            return
        _close_quietly(env)

    def close(self) -> None:
        """Close the shared instance (exactly once) or the unused spare env."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            env = self._instance if self._factory is None else self._spare
            self._spare = None
        if env is not None:
            _close_quietly(env)


def _close_quietly(env: Any) -> None:
    close = getattr(env, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        log.warning("closing %r raised; ignored", env, exc_info=True)
