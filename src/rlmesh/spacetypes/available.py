"""What the installed Gymnasium provides, so that the server side also runs on older releases.

rlmesh's client side needs Gymnasium 1.x; its server side (``EnvServer``, ``rlmesh serve``)
runs on Gymnasium 0.29 too, inside the stack an old env needs (``docs/old-gym.md``). The
names that release lacks are stood in for here, and only here:

* ``OneOf`` (Gymnasium 1.0): a stand-in class that no space is an instance of, so the
  space tables skip it; building one says which release it needs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import gymnasium
from gymnasium import spaces as gs

from rlmesh.errors import CompatError, UnsupportedSpaceError

__all__ = ["CLIENT_GYMNASIUM", "GYMNASIUM_VERSION", "HAS_ONE_OF", "SERVER_GYMNASIUM",
           "SERVER_NUMPY", "OneOf", "client_side_error"]

SERVER_GYMNASIUM = (0, 26, 3)
"""The oldest Gymnasium rlmesh's server side (``EnvServer``, ``rlmesh serve``) runs on."""

SERVER_NUMPY = (1, 24)
"""The oldest numpy rlmesh runs on (server and client side)."""

CLIENT_GYMNASIUM = (1, 1)
"""The oldest Gymnasium rlmesh's client side (remote envs, vector envs, evaluate) runs on."""


def _version(text: str) -> tuple[int, ...]:
    """``"0.29.1"`` as ``(0, 29, 1)``; a pre-release suffix is dropped."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


GYMNASIUM_VERSION: tuple[int, ...] = _version(getattr(gymnasium, "__version__", "0"))
"""The installed Gymnasium's version, as integers."""

HAS_ONE_OF: bool = hasattr(gs, "OneOf")
"""Whether this Gymnasium has ``spaces.OneOf`` (1.0 and later)."""


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def client_side_error(what: str) -> ImportError | None:
    """The error for ``what`` of the client side under a Gymnasium too old for it, if it is.

    Returns:
        A :class:`~rlmesh.errors.CompatError` naming the versions, or ``None`` when this
        Gymnasium is recent enough.
    """
    if GYMNASIUM_VERSION >= CLIENT_GYMNASIUM:
        return None
    return CompatError(
        f"{what} is rlmesh's client side, which needs gymnasium>={_dotted(CLIENT_GYMNASIUM)}, "
        f"and this environment has gymnasium {gymnasium.__version__}. Upgrade it to drive "
        f"envs; an older stack can still serve them (rlmesh's server side runs on "
        f"gymnasium>={_dotted(SERVER_GYMNASIUM)}; docs/old-gym.md)")


class _OneOfStandIn(gs.Space[Any]):
    """``OneOf`` on a Gymnasium without it: never instantiated, never matched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedSpaceError(
            f"a OneOf space needs gymnasium>=1.0, and this process runs gymnasium "
            f"{gymnasium.__version__}")


if TYPE_CHECKING:
    from gymnasium.spaces import OneOf
else:
    OneOf = gs.OneOf if HAS_ONE_OF else _OneOfStandIn
