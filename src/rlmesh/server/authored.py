"""Authored env factories as the server, ``make_vec`` and ``run`` see them.

An authored factory (``rlmesh.EnvFactory``, a layer above) is recognised by duck typing, so
the layers below need not import it: an object, or a class, with the method
``__rlmesh_env__(**make_kwargs)`` returning an :class:`AuthoredEnv`. A class is
instantiated with no arguments first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["HOOK", "AuthoredEnv", "BoundFactory", "authored"]

HOOK = "__rlmesh_env__"
"""The method an authored factory answers."""


@dataclasses.dataclass(frozen=True)
class AuthoredEnv:
    """What serving an authored factory needs.

    Attributes:
        build: Builds one env (validated binding, ``prepare()`` once, tags stamped);
            picklable, so worker processes can build too.
        tags: The tags to publish (``None``: none).
        framework: ``"torch"``, ``"jax"`` or ``None``: how the env wants its actions.
        close: The factory's ``close()``, for teardown.
    """

    build: Callable[[], Any]
    tags: Any = None
    framework: str | None = None
    close: Callable[[], None] | None = None


def authored(obj: Any, **make_kwargs: Any) -> AuthoredEnv | None:
    """``obj`` as an :class:`AuthoredEnv` bound with ``make_kwargs``; ``None`` if not authored.

    Raises:
        ParamError: If ``make_kwargs`` fail the factory's validation (nothing is built).
    """
    if getattr(obj, HOOK, None) is None:
        return None
    instance = obj() if isinstance(obj, type) else obj
    parts: AuthoredEnv = getattr(instance, HOOK)(**make_kwargs)
    return parts


class BoundFactory:
    """An authored factory bound with its ``make()`` keywords (validated when bound).

    Served by ``EnvServer`` like the factory itself (tags, framework, ``close()``), and
    callable: each call builds one env, so it is also a plain env factory.

    Raises:
        TypeError: If ``factory`` is not an authored factory.
        ParamError: If ``make_kwargs`` fail its validation.
    """

    def __init__(self, factory: Any, **make_kwargs: Any) -> None:
        parts = authored(factory, **make_kwargs)
        if parts is None:
            raise TypeError(f"{factory!r} is not an rlmesh.EnvFactory")
        self._parts = parts

    def __rlmesh_env__(self) -> AuthoredEnv:
        """The bound factory's parts."""
        return self._parts

    def __call__(self) -> Any:
        """Build one env."""
        return self._parts.build()
