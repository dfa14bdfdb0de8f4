"""Serving envs: :class:`EnvSource`, and the contract an env describes itself with.

An :class:`EnvSource` is the env kind of :class:`~rlmesh.server.seam.Source`: one shared
instance, or a factory with one env a session; its request handlers are
:func:`rlmesh.server.env_ops.env_handlers`. The server itself knows no kind of source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlmesh import protocol as P
from rlmesh.errors import EnvBusyError
from rlmesh.server.env_ops import env_handlers
from rlmesh.server.framework import ActionConverter
from rlmesh.server.in_place import compiled_stepper, slot_stepper
from rlmesh.server.seam import Handler, SessionPort, SlotStepper, Source
from rlmesh.server.shapes import env_spaces, is_env_like, is_vector_env
from rlmesh.wire.foreign import check_servable
from rlmesh.wire.lenient import sanitize
from rlmesh.wire.schema import space_to_schema

if TYPE_CHECKING:
    from rlmesh.server.options import ServeOptions

log = logging.getLogger("rlmesh.server")

__all__ = [
    "TAGS_METADATA_KEY",
    "EnvFactory",
    "EnvSource",
    "check_tags",
    "describe",
    "is_env_like",
    "is_vector_env",
    "spec_fields",
    "tags_metadata",
]

TAGS_METADATA_KEY = "rlmesh.env_tags"
"""The contract metadata key under which ``EnvServer(tags=...)`` publishes an env's tags."""

EnvFactory = Callable[[], Any]


def describe(env: Any) -> dict[str, Any]:
    """Build the contract fields that come from the env itself.

    Raises:
        UnsupportedSpaceError: If a space has no wire schema, or the env comes from an API
            rlmesh does not serve (PettingZoo, the legacy ``gym`` package).
    """
    check_servable(env)
    spec_map = spec_fields(getattr(env, "spec", None))
    metadata = dict(getattr(env, "metadata", None) or {})
    autoreset = metadata.get("autoreset_mode")
    if autoreset is not None and hasattr(autoreset, "value"):
        metadata["autoreset_mode"] = str(autoreset.value)  # an enum: send its value
    observation_space, action_space = env_spaces(env)
    contract = {
        "kind": "env",
        "observation_space": space_to_schema(observation_space),
        "action_space": space_to_schema(action_space),
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


def check_tags(tags: Any, env: Any) -> None:
    """Let tags that can check themselves (``check_spaces``) refuse an env they do not fit."""
    check = getattr(tags, "check_spaces", None)
    if callable(check):
        vector = is_vector_env(env)
        check(env.single_observation_space if vector else env.observation_space,
              env.single_action_space if vector else env.action_space)


def tags_metadata(tags: Any) -> dict[str, Any]:
    """The metadata entries that publish ``tags`` (``EnvServer(tags=...)``).

    An object with ``to_metadata()`` gives its own entries; one with ``to_dict()``, or a
    mapping, is published under :data:`TAGS_METADATA_KEY`. What the tags mean is for the
    clients that read them; the server only carries them.

    Raises:
        TypeError: If ``tags`` is none of these.
    """
    if hasattr(tags, "to_metadata"):
        return dict(tags.to_metadata())
    if hasattr(tags, "to_dict"):
        return {TAGS_METADATA_KEY: tags.to_dict()}
    if isinstance(tags, Mapping):
        return {TAGS_METADATA_KEY: dict(tags)}
    raise TypeError(f"tags must be a mapping or have to_dict() or to_metadata(), not "
                    f"{type(tags).__qualname__}")


def spec_fields(spec: Any) -> dict[str, Any] | None:
    """The contract's ``spec`` from an env's ``spec``: a Gymnasium ``EnvSpec`` or any object.

    Only a string ``id`` names the env; each other field is taken when it has the type
    Gymnasium gives it and left out (``None``) otherwise, so a foreign ``spec`` object never
    stops an env from being served.
    """
    env_id = getattr(spec, "id", None)
    if not isinstance(env_id, str) or not env_id:
        return None
    steps = getattr(spec, "max_episode_steps", None)
    threshold = getattr(spec, "reward_threshold", None)
    nondeterministic = getattr(spec, "nondeterministic", False)
    return {
        "id": env_id,
        "max_episode_steps": steps if type(steps) is int else None,
        "reward_threshold": (float(threshold) if isinstance(threshold, (int, float))
                             and not isinstance(threshold, bool) else None),
        "nondeterministic": nondeterministic if isinstance(nondeterministic, bool) else False,
    }


class EnvSource(Source):
    """Hands envs to sessions.

    An env **instance** is lent to one session at a time; a second concurrent session gets
    :class:`~rlmesh.errors.EnvBusyError` immediately. A **factory** (a zero-argument callable
    or a registered Gymnasium id) builds a fresh env for every session, which the session
    closes when it ends. The first env a factory builds is used to describe the contract and
    is handed to the first session.
    """

    def __init__(self, env_or_factory: Any, *, tags: Any = None,
                 convert_action: ActionConverter | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.convert_action = convert_action
        self._on_close = on_close
        """Applied to each action just before ``step`` (``EnvServer(framework=...)``)."""
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
                if hasattr(env_or_factory, "predict"):
                    raise TypeError(
                        f"EnvServer serves envs, and {type(env_or_factory).__qualname__} is a "
                        "policy: serve it with model.serve(address) (or rlmesh serve-model), "
                        "which serves an rlmesh.models.serve.ModelSource")
                raise TypeError(
                    "EnvServer needs a Gymnasium env, an object with observation_space, "
                    "action_space, reset and step, a zero-argument factory, or a registered "
                    f"env id; got {type(env_or_factory).__qualname__}"
                )
            self._factory = env_or_factory
        else:
            self._instance = env_or_factory
        try:
            prototype = self._instance if self._factory is None else self._build()
        except BaseException:
            self._run_on_close()
            raise
        try:
            self.contract = describe(prototype)
            if tags is not None:
                check_tags(tags, prototype)
                self.contract["metadata"].update(sanitize(tags_metadata(tags)))
        except BaseException:
            if self._factory is not None:
                _close_quietly(prototype)
            self._run_on_close()
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

    def handlers(self, session: SessionPort) -> dict[int, Handler]:
        """STEP, RESET, RENDER and the attribute ops, on the session's env."""
        return env_handlers(session)

    def slot_stepper(self, session: SessionPort) -> SlotStepper | None:
        """STEP for a slot step in one call (see :func:`rlmesh.server.in_place.slot_stepper`)."""
        return slot_stepper(session)

    def compiled_stepper(self, session: SessionPort) -> Callable[[], int] | None:
        """A step in one compiled call (see :func:`rlmesh.server.in_place.compiled_stepper`)."""
        return compiled_stepper(session)

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
        self._run_on_close()

    def _run_on_close(self) -> None:
        """Call ``on_close`` once (an authored factory's ``close()``)."""
        on_close, self._on_close = self._on_close, None
        if on_close is None:
            return
        try:
            on_close()
        except Exception:
            log.warning("the env factory's close() raised; ignored", exc_info=True)


def _close_quietly(env: Any) -> None:
    close = getattr(env, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        log.warning("closing %r raised; ignored", env, exc_info=True)
