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

__all__ = ["HOOK", "AuthoredEnv", "authored"]

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
