"""Endpoints found through DNS: the stable names of a Kubernetes StatefulSet's pods.

A StatefulSet behind a headless Service gives pod ``i`` the DNS name
``<statefulset>-<i>.<service>[.<namespace>.svc...]``, which stays the same when the pod is
restarted on another node (only the IP behind it changes). An evaluator that connects by
those names therefore comes back to a restarted server without being told. The cluster
publishes a pod's name only while the pod is ready, so a name that does not resolve yet is a
server still starting.

:class:`StatefulSetDNS` names the endpoints (``envs.envs.rl.svc:5555`` with 8 replicas gives
``envs-0.envs.rl.svc:5555`` ... ``envs-7.envs.rl.svc:5555``), :func:`wait_resolvable` waits
for them to be published, and :class:`DnsEndpoints` is the same set as a live
:class:`~rlmesh.vector.endpoints.EndpointSet` (a slot is ``None`` while its name is not
published). Every lookup goes through a resolver that tests replace, so none of this needs a
cluster to be checked.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence

from rlmesh.errors import ConnectFailedError

__all__ = ["DnsEndpoints", "Resolver", "StatefulSetDNS", "find_statefulset", "resolves",
           "system_resolver", "wait_resolvable"]

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> IP addresses``; raises :class:`OSError` for a name that is not known."""

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SPEC_HELP = "STATEFULSET[.SERVICE[.NAMESPACE[.svc...]]]:PORT, e.g. envs.envs.rl.svc:5555"


def system_resolver(host: str, port: int) -> list[str]:
    """The system's lookup (``getaddrinfo``, which reads the pod's ``resolv.conf``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolves(host: str, port: int, resolver: Resolver = system_resolver) -> bool:
    """Whether ``host`` has an address now (``False`` for a name not published yet)."""
    try:
        return bool(resolver(host, port))
    except (OSError, UnicodeError):
        return False


@dataclasses.dataclass(frozen=True)
class StatefulSetDNS:
    """The DNS names of a StatefulSet's pods, as endpoint addresses.

    Args:
        statefulset: The StatefulSet's name (its pods are ``<statefulset>-<i>``).
        domain: The headless Service's name, optionally followed by the namespace and
            ``svc`` (``envs``, ``envs.rl``, ``envs.rl.svc.cluster.local``).
        replicas: How many pods (the StatefulSet's ``replicas``).
        port: The port every pod serves on.
    """

    statefulset: str
    domain: str
    replicas: int
    port: int

    def __post_init__(self) -> None:
        if not _LABEL.match(self.statefulset):
            raise ValueError(f"{self.statefulset!r} is not a StatefulSet name (lowercase "
                             "letters, digits and '-', at most 63)")
        bad = [label for label in self.domain.split(".") if not _LABEL.match(label)]
        if bad:
            raise ValueError(f"{self.domain!r} is not a service domain: {bad[0]!r} is not a "
                             "DNS label")
        if isinstance(self.replicas, bool) or self.replicas < 1:
            raise ValueError(f"replicas must be >= 1, not {self.replicas!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"the port must be 1 to 65535, not {self.port}")

    @classmethod
    def parse(cls, spec: str, replicas: int) -> StatefulSetDNS:
        """Read ``STATEFULSET[.SERVICE[...]]:PORT``; a single name is both the set and service.

        Raises:
            ValueError: For a spec without a port, or with names DNS cannot hold.
        """
        host, sep, port = spec.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{spec!r} is not a StatefulSet endpoint spec: {_SPEC_HELP}")
        statefulset, _, domain = host.partition(".")
        return cls(statefulset, domain or statefulset, replicas, int(port))

    def hosts(self) -> list[str]:
        """Pod ``i``'s DNS name, for every ``i`` in ``range(replicas)``."""
        return [f"{self.statefulset}-{i}.{self.domain}" for i in range(self.replicas)]

    def addresses(self) -> list[str]:
        """Pod ``i``'s endpoint address, ``host:port``, in pod order."""
        return [f"{host}:{self.port}" for host in self.hosts()]


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def wait_resolvable(addresses: Sequence[str], timeout: float, *,
                    resolver: Resolver = system_resolver,
                    interval: float = 0.5) -> tuple[list[str], list[str]]:
    """Wait until every ``host:port`` address's name resolves, or ``timeout`` passes.

    Args:
        addresses: The endpoints (``host:port``).
        timeout: Seconds to wait for names still unpublished.
        resolver: The lookup (the system's by default).
        interval: Seconds between rounds of lookups.

    Returns:
        The addresses that resolve and those that still do not, each in the given order.

    Raises:
        ConnectFailedError: If no name resolved within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while True:
        found |= {address for address in addresses if address not in found
                  and resolves(*_split(address), resolver=resolver)}
        left = deadline - time.monotonic()
        if len(found) == len(addresses) or left <= 0:
            break
        time.sleep(min(interval, left))
    if not found:
        raise ConnectFailedError(f"none of {len(addresses)} endpoint names resolved within "
                                 f"{timeout}s (first: {addresses[0] if addresses else '-'}); "
                                 "are the pods ready and the names right?")
    return ([a for a in addresses if a in found], [a for a in addresses if a not in found])


def find_statefulset(spec: str, replicas: int, timeout: float, *,
                     resolver: Resolver = system_resolver) -> tuple[list[str], list[str]]:
    """A StatefulSet's pod endpoints: those published within ``timeout``, and the rest.

    Args:
        spec: ``STATEFULSET[.SERVICE[.NAMESPACE.svc]]:PORT`` (:meth:`StatefulSetDNS.parse`).
        replicas: The StatefulSet's number of pods.
        timeout: Seconds to wait for names not published yet.
        resolver: The lookup (the system's by default).

    Raises:
        ValueError: For a malformed spec.
        ConnectFailedError: If no pod name resolved within ``timeout``.
    """
    names = StatefulSetDNS.parse(spec, replicas).addresses()
    return wait_resolvable(names, timeout, resolver=resolver)


class DnsEndpoints:
    """A live endpoint set of DNS names: a slot is its name while the name resolves.

    Args:
        addresses: The endpoints (``host:port``), one slot each
            (:meth:`StatefulSetDNS.addresses`).
        resolver: The lookup (the system's by default).
        interval: Seconds between lookups while :meth:`wait_changed` waits.
    """

    def __init__(self, addresses: Sequence[str], *, resolver: Resolver = system_resolver,
                 interval: float = 2.0) -> None:
        self._names = list(addresses)
        self._resolver = resolver
        self._interval = interval
        self._current: list[str | None] = [None] * len(self._names)
        self._version = 0
        self._lock = threading.Lock()
        self.refresh()

    @property
    def addresses(self) -> list[str | None]:
        """Each slot's name, or ``None`` while it does not resolve."""
        with self._lock:
            return list(self._current)

    @property
    def version(self) -> int:
        """Grows whenever a slot's name starts or stops resolving."""
        with self._lock:
            return self._version

    def refresh(self) -> int:
        """Look every name up again; returns the version after it."""
        now = [name if resolves(*_split(name), resolver=self._resolver) else None
               for name in self._names]
        with self._lock:
            if now != self._current:
                self._current = now
                self._version += 1
            return self._version

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Look the names up every ``interval`` until the version moves or ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.refresh()
            left = None if deadline is None else deadline - time.monotonic()
            if current != version or (left is not None and left <= 0):
                return current
            time.sleep(self._interval if left is None else min(self._interval, left))
