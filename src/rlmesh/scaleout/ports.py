"""Binding a fleet server to a port that cannot race Ray's own workers.

Ray starts worker processes on ports it picks from its worker range (10002 to 19999 unless
configured otherwise). A server that asks the kernel for any free port (port 0) may be given
one inside that range, free now but about to be chosen by Ray (risk R3 of the scale-out
research). A fleet server therefore binds port 0 and binds again while the port it got falls
in the avoided range, or picks from an explicit ``port_range`` when the operator gives one
(a firewall opening, say).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

__all__ = ["RAY_WORKER_PORTS", "bind_outside"]

RAY_WORKER_PORTS = (10002, 19999)
"""Ray's default worker port range (``--min-worker-port``, ``--max-worker-port``)."""

_TRIES = 32

Bound = TypeVar("Bound")


def bind_outside(bind: Callable[[int], Bound], port_of: Callable[[Bound], int],
                 release: Callable[[Bound], None], *,
                 avoid: tuple[int, int] = RAY_WORKER_PORTS,
                 port_range: tuple[int, int] | None = None) -> Bound:
    """Bind with ``bind(port)`` until the port is outside ``avoid`` (or inside ``port_range``).

    Args:
        bind: Binds a server to a port (0: any free port) and returns it.
        port_of: The port a bound server got.
        release: Closes a server bound to a port that must not be kept.
        avoid: Ports never kept when the kernel picks (inclusive bounds).
        port_range: Pick ports at random from these bounds (inclusive) instead of port 0.

    Returns:
        The bound server.

    Raises:
        OSError: If no acceptable port could be bound after a few tries.
    """
    if port_range is not None and not 0 < port_range[0] <= port_range[1] < 65536:
        raise ValueError(f"port_range must be (low, high) within 1..65535, got {port_range}")
    last: OSError | None = None
    for _ in range(_TRIES):
        wanted = random.randint(*port_range) if port_range is not None else 0
        try:
            server = bind(wanted)
        except OSError as exc:  # taken meanwhile: try another
            last = exc
            continue
        if port_range is not None or not avoid[0] <= port_of(server) <= avoid[1]:
            return server
        release(server)
    where = f"in {port_range}" if port_range is not None else f"outside {avoid}"
    raise OSError(f"no free port {where} after {_TRIES} tries") from last
