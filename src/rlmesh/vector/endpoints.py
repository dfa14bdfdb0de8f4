"""Live endpoint sets: addresses that change while a run goes on.

A fixed address list cannot follow a server that a cluster manager restarts at a new address.
An :class:`EndpointSet` can: it names the *slots* of a fleet (one per server) and each slot's
current address, and it says when anything changed. ``rlmesh.evaluate`` and
``RemoteVectorEnv`` read it to come back to a restarted server; a Ray fleet
(``rlmesh.ray``), a Kubernetes DNS watcher or a test's list of subprocesses implement it.

:class:`StaticEndpoints` is the trivial set (a fixed list) and :class:`MutableEndpoints` one a
program updates by hand (what tests and simple supervisors use).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["EndpointSet", "MutableEndpoints", "StaticEndpoints", "as_endpoint_set",
           "current_addresses"]


@runtime_checkable
class EndpointSet(Protocol):
    """What a live endpoint set offers (a structural protocol: no base class needed).

    Slots are stable: slot ``k`` is the same server for the whole run, even when its address
    changes after a restart. An address of ``None`` means the slot has no serving server now.
    """

    @property
    def addresses(self) -> list[str | None]:
        """Each slot's current address (``None``: not serving now)."""
        ...

    @property
    def version(self) -> int:
        """A number that grows whenever any slot's address changes."""
        ...

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Block until :attr:`version` differs from ``version`` (or ``timeout`` passes).

        Returns:
            The version now.
        """
        ...


class StaticEndpoints:
    """A fixed list of addresses as an :class:`EndpointSet` (its version never changes).

    Args:
        addresses: The endpoints' addresses, one slot each.
    """

    def __init__(self, addresses: Sequence[str]) -> None:
        self._addresses: list[str | None] = list(addresses)

    @property
    def addresses(self) -> list[str | None]:
        """The addresses, as given."""
        return list(self._addresses)

    @property
    def version(self) -> int:
        """Always 0."""
        return 0

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Nothing ever changes: sleeps ``timeout`` (not forever) and returns 0."""
        if timeout is not None and timeout > 0:
            time.sleep(timeout)
        return 0


class MutableEndpoints:
    """An endpoint set a program updates: :meth:`set` a slot's address, or clear it.

    Args:
        addresses: The slots' first addresses.
    """

    def __init__(self, addresses: Sequence[str | None]) -> None:
        self._addresses = list(addresses)
        self._version = 0
        self._changed = threading.Condition()

    @property
    def addresses(self) -> list[str | None]:
        """Each slot's current address."""
        with self._changed:
            return list(self._addresses)

    @property
    def version(self) -> int:
        """Grows with every :meth:`set`."""
        with self._changed:
            return self._version

    def set(self, slot: int, address: str | None) -> None:
        """Give ``slot`` a new address (``None``: it is not serving now) and wake waiters."""
        with self._changed:
            self._addresses[slot] = address
            self._version += 1
            self._changed.notify_all()

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Block until the version moves past ``version`` or ``timeout`` passes."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version


def as_endpoint_set(endpoints: str | Sequence[str] | EndpointSet) -> EndpointSet:
    """``endpoints`` as an :class:`EndpointSet` (an address or a list becomes a static one)."""
    if isinstance(endpoints, str):
        return StaticEndpoints([endpoints])
    if isinstance(endpoints, EndpointSet):
        return endpoints
    return StaticEndpoints(list(endpoints))


def current_addresses(endpoints: EndpointSet) -> list[str]:
    """Every slot's address now.

    Raises:
        ValueError: If the set is empty or a slot has no address now (a client that connects
            every slot at once cannot start without it).
    """
    addresses = endpoints.addresses
    missing = [k for k, a in enumerate(addresses) if a is None]
    if not addresses or missing:
        raise ValueError(f"the endpoint set has no address for slots {missing}" if missing
                         else "the endpoint set is empty")
    return [a for a in addresses if a is not None]
