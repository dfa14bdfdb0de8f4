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

from rlmesh.errors import UnsupportedSpaceError

__all__ = ["GYMNASIUM_VERSION", "HAS_ONE_OF", "OneOf"]


def _version(text: str) -> tuple[int, ...]:
    """``"0.29.1"`` as ``(0, 29, 1)``; a pre-release suffix is dropped."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


GYMNASIUM_VERSION: tuple[int, ...] = _version(getattr(gymnasium, "__version__", "0"))
"""The installed Gymnasium's version, as integers."""

HAS_ONE_OF: bool = hasattr(gs, "OneOf")
"""Whether this Gymnasium has ``spaces.OneOf`` (1.0 and later)."""


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
