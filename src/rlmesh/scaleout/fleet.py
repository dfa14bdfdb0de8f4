"""The handle of a fleet of servers that Ray runs: :class:`RayFleet`.

The handle is a live :class:`~rlmesh.vector.endpoints.EndpointSet`: slot ``k`` is server
``k`` for the fleet's whole life, :attr:`RayFleet.addresses` are re-read from Ray when a
server restarts (at a new address in general), and :attr:`RayFleet.version` grows with each
change. Clients connect to the addresses directly, with the fleet's token; Ray is never on
the data path.
"""

from __future__ import annotations

import contextlib
import time
from types import TracebackType
from typing import Any

from rlmesh.errors import RLMeshTimeoutError
from rlmesh.evaluation.evaluate import evaluate
from rlmesh.evaluation.results import RunResult
from rlmesh.scaleout.records import FleetRecord
from rlmesh.scaleout.watch import SlotWatch
from rlmesh.vector.env import RemoteVectorEnv

__all__ = ["RayFleet"]


class RayFleet:
    """Servers running in Ray actors, one per slot: their addresses, state and teardown.

    Made by :func:`rlmesh.ray.serve` (which starts the servers) or
    :func:`rlmesh.ray.get_fleet` (which finds a named one). A context manager: leaving the
    block closes the fleet.

    Args:
        ray: The ``ray`` module.
        actors: The servers' actor handles, in slot order.
        record: What the fleet is (name, size, token, placement group).
        placement_group: Its placement group (``None``: none to remove).
        keepers: Actors to kill with the fleet besides the servers (its record actor).
        poll_interval: Seconds between two reads of the servers' state from Ray.
    """

    def __init__(self, ray: Any, actors: list[Any], record: FleetRecord, *,
                 placement_group: Any = None, keepers: tuple[Any, ...] = (),
                 poll_interval: float = 0.5) -> None:
        self._ray = ray
        self._actors = actors
        self.record = record
        self._placement_group = placement_group
        self._keepers = keepers
        self._watch = SlotWatch(ray, actors, poll_interval)
        self._closed = False
        self._watch.poll()
        self._watch.start()

    # -- the EndpointSet protocol -------------------------------------------------------------

    @property
    def addresses(self) -> list[str | None]:
        """Each server's current address, in slot order (``None``: not serving now)."""
        return self._watch.addresses

    @property
    def version(self) -> int:
        """A number that grows whenever a server's address changes."""
        return self._watch.version

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Block until :attr:`version` differs from ``version`` or ``timeout`` passes.

        Returns:
            The version now.
        """
        return self._watch.wait_changed(version, timeout)

    # -- what the fleet is --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The fleet's name (generated when none was given)."""
        return self.record.name

    @property
    def token(self) -> str | None:
        """The token the servers require; pass it to clients (``token=fleet.token``)."""
        return self.record.token

    @property
    def num_servers(self) -> int:
        """How many servers (slots) the fleet has."""
        return self.record.num_servers

    def __len__(self) -> int:
        return self.record.num_servers

    def __repr__(self) -> str:
        alive = sum(address is not None for address in self.addresses)
        return (f"RayFleet({self.name!r}, {self.record.env}, {alive}/{self.num_servers} "
                f"serving{', closed' if self._closed else ''})")

    def status(self, stats: bool = False) -> list[dict[str, Any]]:
        """One entry per server, read from Ray now.

        Args:
            stats: Also ask every live server for its counters (one call each).

        Returns:
            Dicts with ``index``, ``address``, ``alive``, ``state`` (Ray's actor state),
            ``restarts``, ``pid``, ``node`` (Ray's node id) and ``stats`` (the server's
            counters when it last answered).
        """
        self._watch.poll(stats)
        return self._watch.rows()

    def refresh(self) -> list[str | None]:
        """Read the servers' state from Ray now, and return :attr:`addresses`."""
        self._watch.poll()
        return self.addresses

    def wait_ready(self, timeout: float | None = 60.0) -> list[str]:
        """Block until every server serves (after a start or a restart).

        Args:
            timeout: Seconds to wait at most (``None``: as long as it takes).

        Returns:
            Every server's address.

        Raises:
            RLMeshTimeoutError: If some server is still not serving when ``timeout`` passes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._watch.poll()
        while True:
            addresses = self.addresses
            if all(address is not None for address in addresses):
                return [str(address) for address in addresses]
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                missing = [k for k, a in enumerate(addresses) if a is None]
                raise RLMeshTimeoutError(f"fleet {self.name!r}: servers {missing} not serving "
                                         f"after {timeout} s (see status())")
            self.wait_changed(self.version, 0.5 if left is None else min(left, 0.5))
            self._watch.poll()

    # -- clients ------------------------------------------------------------------------------

    def vector_env(self, *, ready_timeout: float | None = 60.0,
                   **kwargs: Any) -> RemoteVectorEnv:
        """A :class:`~rlmesh.RemoteVectorEnv` over every server, with the fleet's token.

        Args:
            ready_timeout: How long to wait for every server to serve first.
            **kwargs: Passed to :class:`~rlmesh.RemoteVectorEnv` (``autoreset_mode``,
                ``timeout``...).
        """
        addresses = self.wait_ready(ready_timeout)
        kwargs.setdefault("token", self.token)
        return RemoteVectorEnv(addresses, **kwargs)

    def evaluate(self, model: Any, **kwargs: Any) -> RunResult:
        """:func:`rlmesh.evaluate` on the fleet (a live endpoint set), with its token.

        A server that Ray restarts is played on again at its new address.

        Args:
            model: What ``evaluate`` plays.
            **kwargs: Passed to :func:`rlmesh.evaluate` (``episodes``, ``seed``...).
        """
        kwargs.setdefault("token", self.token)
        self.wait_ready(kwargs.pop("ready_timeout", 60.0))
        return evaluate(model, self, **kwargs)

    # -- teardown -----------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Stop following the fleet and leave its servers running (a handle of a named one)."""
        self._watch.stop()

    def close(self) -> None:
        """Kill every server (no restart), remove the placement group, forget the name.

        Idempotent. Clients still connected see their connection drop.
        """
        if self._closed:
            return
        self._closed = True
        self._watch.stop()
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.get(actor.stop.remote(), timeout=5)
        for actor in [*self._actors, *self._keepers]:
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)
        if self._placement_group is not None:
            from ray.util.placement_group import remove_placement_group

            with contextlib.suppress(Exception):
                remove_placement_group(self._placement_group)

    def __enter__(self) -> RayFleet:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


