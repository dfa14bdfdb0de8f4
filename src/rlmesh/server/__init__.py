"""The server: ``EnvServer``, its sessions, where their envs come from, resumption.

``rlmesh.EnvServer`` and ``rlmesh.server.EnvServer`` are :class:`rlmesh.server.server.EnvServer`
(loaded on first use, so that importing one module of this package loads no other).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmesh.server.server import EnvServer, stop_on_signals

__all__ = ["EnvServer", "stop_on_signals"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rlmesh.server import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
