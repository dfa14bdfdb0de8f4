"""One worker per endpoint slot of ``rlmesh.evaluate``: connect, play, come back after a loss.

A slot is one server of an :class:`~rlmesh.vector.endpoints.EndpointSet` (a plain list of
addresses is a set whose addresses never change). Its worker connects to the slot's current
address and plays queued episodes there. When the endpoint fails, the episodes it was playing
go back to the queue (the run does that) and the worker waits for the slot to serve again:
it re-reads the slot's address (a server restarted elsewhere has a new one) and retries with
jittered exponential backoff, waking early when the set reports a change.

A worker stops when the run is over (every episode done, or the run stopped), when its
endpoint turns out to serve another env, or when no slot at all has served for
``reconnect_timeout`` seconds: a slot that never comes back does not hang the run.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from rlmesh.client.probe import probe
from rlmesh.errors import RLMeshError
from rlmesh.vector.backoff import Backoff, pause
from rlmesh.vector.connect import connect_endpoint
from rlmesh.vector.endpoints import EndpointSet

__all__ = ["Outcome", "SlotHost", "SlotWorker"]

Outcome = Literal["done", "failed", "refused"]
"""How playing on one connection ended: the run needs no more of this slot, the endpoint
failed (come back to it), or it serves another env (leave it out)."""


class SlotHost(Protocol):
    """What a slot worker needs of the run it works for (``evaluate``'s ``_Run``)."""

    endpoints: EndpointSet
    probe_options: dict[str, Any]

    def connect_options(self) -> Any:
        """The :class:`~rlmesh.ConnectOptions` for a slot's connection."""
        ...

    def over(self) -> bool:
        """Whether the run needs no more work from any slot."""
        ...

    def given_up(self) -> bool:
        """Whether no slot has served for so long that the run stops waiting for one."""
        ...

    def play_on(self, env: Any, address: str) -> Outcome:
        """Play queued episodes on a connected ``env``; the env is closed on return."""
        ...

    def note(self, kind: str, address: str | None, message: str) -> None:
        """Record an event of the run."""
        ...


class SlotWorker:
    """The loop of one slot: see the module docstring.

    Args:
        host: The run.
        slot: The slot's index in ``host.endpoints``.
    """

    def __init__(self, host: SlotHost, slot: int) -> None:
        self.host, self.slot = host, slot
        self.down = False
        """Whether the slot is in an outage (it failed, or has not served yet)."""
        self.failed = False
        """Whether the slot has failed during this run (to report its return)."""
        self.last_address: str | None = None

    def run(self) -> None:
        """Serve the slot until the run needs it no more."""
        endpoints, backoff = self.host.endpoints, Backoff()
        version = endpoints.version
        while not self.host.over():
            if self.host.given_up():
                self._stop_down("no endpoint served for reconnect_timeout; given up")
                return
            env, address = self._connect()
            if env is None or address is None:
                version = pause(endpoints, version, backoff.next(), self.host.over)
                continue
            backoff.clear()
            outcome = self.host.play_on(env, address)
            if outcome != "failed":
                return
            self.down = self.failed = True
            version = pause(endpoints, version, backoff.next(), self.host.over)
        self._stop_down("the run ended before it served again")

    def _address(self) -> str | None:
        addresses = self.host.endpoints.addresses
        return addresses[self.slot] if self.slot < len(addresses) else None

    def _connect(self) -> tuple[Any, str | None]:
        """Connect to the slot's current address; ``(None, ...)`` when it does not serve."""
        address = self._address()
        if address is not None:
            self.last_address = address
        try:
            if address is None:
                raise LookupError(f"slot {self.slot} has no address now")
            probe(address, **self.host.probe_options)  # (fails fast while it is down)
            env = connect_endpoint(address, self.host.connect_options())
        except (RLMeshError, LookupError) as exc:
            if not self.down:
                self.host.note("connect_failed", address or self.last_address,
                               f"{type(exc).__name__}: {exc}")
            self.down = True
            return None, address
        if self.failed and self.down:
            self.host.note("endpoint_returned", address,
                           f"slot {self.slot} serves again at {address}")
        self.down = False
        return env, address

    def _stop_down(self, why: str) -> None:
        """Record that the slot ends the run without serving, if it is down."""
        if self.down:
            self.host.note("endpoint_down", self.last_address, f"slot {self.slot}: {why}")
