""":class:`EnvFactory`: an env written to be served, with its tags, parameters and catalog.

A subclass implements ``make(**kwargs)`` and may declare ``tags``, ``params`` (a
:class:`~rlmesh.authoring.params.ParamSpec`), ``prepare()``, ``close()`` and
``enumerate_variants()``. Every ``make`` a subclass defines is wrapped when the class is
created, so that each call validates its binding **before** the body runs, runs
``prepare()`` once per process, and stamps the tags and the binding into ``env.metadata``.
The server, ``rlmesh.make_vec`` and ``rlmesh.run`` take a factory (class or instance)
through the duck-typed hook of :mod:`rlmesh.server.authored`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import gymnasium as gym

from rlmesh.authoring.binding import raw_make, resolve, uncovered, wrap_make
from rlmesh.authoring.describe import describe
from rlmesh.authoring.params import PARAM_METADATA_KEY, ParamSpec
from rlmesh.authoring.variants import Variant
from rlmesh.errors import RLMeshWarning
from rlmesh.server.authored import AuthoredEnv
from rlmesh.server.server import EnvServer, stop_on_signals
from rlmesh.server.sources import tags_metadata

__all__ = ["EnvFactory", "JaxEnvFactory", "TorchEnvFactory", "vector_factory"]

_PREPARE_LOCK = threading.Lock()
_VECTOR_MODES = {None: gym.vector.SyncVectorEnv, "sync": gym.vector.SyncVectorEnv,
                 "async": gym.vector.AsyncVectorEnv}


def _checked(make: Callable[..., Any]) -> Callable[..., Any]:
    """``make`` validating its binding first, preparing once, and stamping what it built."""

    @functools.wraps(make)
    def checked(self: EnvFactory, **kwargs: Any) -> Any:
        binding = self.resolve_params(**kwargs)
        self._prepare_once()
        env = make(self, **binding)
        return _stamp(env, type(self).tags, binding if type(self).params is not None else None)

    return wrap_make(checked, make)


def _stamp(env: Any, tags: Any, binding: dict[str, Any] | None) -> Any:
    """Record ``tags`` and the validated ``binding`` in ``env.metadata`` (idempotent)."""
    if tags is None and binding is None:
        return env
    metadata = dict(getattr(env, "metadata", None) or {})
    if tags is not None:
        metadata.update(tags_metadata(tags))
    if binding is not None:
        metadata[PARAM_METADATA_KEY] = {key: list(value) if isinstance(value, tuple) else value
                                        for key, value in binding.items()}
    with contextlib.suppress(AttributeError, TypeError):
        env.metadata = metadata
    return env


def _build(factory: EnvFactory, binding: dict[str, Any]) -> Any:
    """One env from ``factory`` with ``binding`` (module level, so it pickles)."""
    return factory.make(**binding)


def _vector(build: Callable[[], Any], num_envs: int, mode: str | None) -> Any:
    """A Gymnasium vector env of ``num_envs`` envs from ``build``."""
    return _VECTOR_MODES[mode]([build] * num_envs)


def vector_factory(build: Callable[[], Any], num_envs: int,
                   mode: str | None = None) -> Callable[[], Any]:
    """A factory of Gymnasium vector envs of ``num_envs`` envs from ``build`` (picklable).

    Raises:
        ValueError: For ``num_envs < 1`` or a mode other than ``"sync"``/``"async"``.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, not {num_envs!r}")
    if mode not in _VECTOR_MODES:
        raise ValueError(f"vectorization_mode must be 'sync' or 'async', not {mode!r}")
    return functools.partial(_vector, build, num_envs, mode)


class EnvFactory:
    """An env to serve: subclass it, set ``tags`` and ``params``, implement ``make``.

    Class attributes:
        tags: The env's observation/action tags, published in its contract metadata
            (``None``: a generic env).
        params: A :class:`~rlmesh.ParamSpec` over ``make()``'s keywords; ``None`` passes
            any binding through unchecked.
        framework: ``"torch"`` or ``"jax"`` for an env that wants its actions as that
            framework's arrays (``rlmesh.torch.EnvFactory`` sets it); ``None``: numpy.

    Example::

        class Pendulum(rlmesh.EnvFactory):
            params = rlmesh.ParamSpec(rlmesh.Param("g", float))

            def make(self, *, g: float = 10.0):
                return gymnasium.make("Pendulum-v1", g=g)
    """

    tags: ClassVar[Any] = None
    params: ClassVar[ParamSpec | None] = None
    framework: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        make = cls.__dict__.get("make")
        if make is not None and raw_make(make) is None:
            cls.make = _checked(make)  # type: ignore[method-assign]
        if cls.params is not None and not isinstance(cls.params, ParamSpec):
            raise TypeError(f"{cls.__qualname__}.params must be an rlmesh.ParamSpec or None, "
                            f"not {type(cls.params).__qualname__}")
        missing = uncovered(cls.params, raw_make(cls.make))
        if missing:
            warnings.warn(f"{cls.__qualname__}.params declares {', '.join(missing)}, which "
                          "make() neither names nor takes through **kwargs: they are never "
                          "validated", RLMeshWarning, stacklevel=2)

    def __new__(cls, *args: Any, **kwargs: Any) -> EnvFactory:  # noqa: D102
        if raw_make(cls.make) is None:
            raise TypeError(f"{cls.__qualname__} is abstract: subclass EnvFactory and "
                            "implement make()")
        return super().__new__(cls)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_rlmesh_prepared", None)  # a worker process prepares once for itself
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- the author's hooks -------------------------------------------------------------------

    def prepare(self) -> None:
        """One-time setup before the first ``make()`` (downloads, daemons); optional."""

    def make(self, **kwargs: Any) -> Any:
        """Build and return one env (or a vector env). Required."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement make()")

    def close(self) -> None:
        """Release what ``prepare()`` or ``make()`` acquired beyond the envs; optional."""

    @classmethod
    def enumerate_variants(cls) -> Iterable[Variant]:
        """The catalog of concrete sub-envs (a list, or a generator); empty by default."""
        return []

    # -- what rlmesh does with them -----------------------------------------------------------

    @classmethod
    def resolve_params(cls, **kwargs: Any) -> dict[str, Any]:
        """Validate a ``make()`` binding without building anything; the binding to use.

        Raises:
            UnknownParamError: For a key neither declared nor a keyword of ``make()``.
            MissingParamError: For a required keyword that is not given.
            ParamError: For a value that fails its type or choices.
        """
        return resolve(cls.params, raw_make(cls.make), kwargs)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The factory's ``rlmesh.describe.v1`` envelope (:func:`rlmesh.describe`)."""
        return describe(cls, kind="env")

    def _prepare_once(self) -> None:
        with _PREPARE_LOCK:
            if not self.__dict__.get("_rlmesh_prepared"):
                self.prepare()
                self._rlmesh_prepared = True

    def __rlmesh_env__(self, **make_kwargs: Any) -> AuthoredEnv:
        """The factory bound with ``make_kwargs`` (validated now), for the server."""
        binding = self.resolve_params(**make_kwargs)
        return AuthoredEnv(build=functools.partial(_build, self, binding), tags=self.tags,
                           framework=self.framework, close=self.close)

    def serve(self, address: str | None = None, *, num_envs: int = 1,
              vectorization_mode: str | None = None, framework: str | None = None,
              device: Any = None, **make_kwargs: Any) -> None:
        """Validate the binding, ``prepare()``, ``make(**make_kwargs)``, publish, and block.

        Serves until shut down, Ctrl+C or SIGTERM (from the main thread), then calls
        :meth:`close`. Every session gets an env of its own.

        Args:
            address: Where to listen (``EnvServer``'s default ``127.0.0.1:5555``); a
                container needs ``0.0.0.0:PORT``, and a token beyond loopback.
            num_envs: More than 1 serves a Gymnasium vector env of that many envs (numpy
                only; its contract carries no tags, since tags describe one env).
            vectorization_mode: ``"sync"`` (the default) or ``"async"`` for ``num_envs > 1``.
            framework: Override the class's ``framework`` (``"torch"``, ``"jax"``).
            device: Where a torch/JAX env's actions go (``"cuda:0"``).
            **make_kwargs: The ``make()`` binding.

        Raises:
            ParamError: For a bad binding (before anything is built).
            ValueError: For a bad ``num_envs`` or ``vectorization_mode``.
        """
        parts = self.__rlmesh_env__(**make_kwargs)
        framework = framework or parts.framework
        build, tags = _serving(parts, num_envs, vectorization_mode, framework)
        try:
            server = EnvServer(build, address, tags=tags, framework=framework, device=device)
            if threading.current_thread() is threading.main_thread():
                stop_on_signals()
            server.serve()
        finally:
            self.close()


def _serving(parts: AuthoredEnv, num_envs: int, mode: str | None,
             framework: str | None) -> tuple[Callable[[], Any], Any]:
    """What to serve for ``num_envs``: the factory's builder and tags, or a vector env."""
    vector = vector_factory(parts.build, num_envs, mode)
    if num_envs == 1:
        if mode is not None:
            raise ValueError("vectorization_mode applies to num_envs > 1")
        return parts.build, parts.tags
    if framework not in (None, "numpy"):
        raise ValueError(f"a {framework} env cannot be vectorized by Gymnasium (it stacks "
                         "observations with numpy); serve it with num_envs=1")
    return vector, None


class TorchEnvFactory(EnvFactory):
    """An :class:`EnvFactory` whose env takes its actions as torch tensors."""

    framework: ClassVar[str | None] = "torch"


class JaxEnvFactory(EnvFactory):
    """An :class:`EnvFactory` whose env takes its actions as JAX arrays."""

    framework: ClassVar[str | None] = "jax"
