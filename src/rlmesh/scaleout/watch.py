"""Following a fleet's servers through Ray: which are alive, where they listen, restarts.

:class:`SlotWatch` keeps one row per server (its slot) and refreshes the rows from Ray: the
actor table of Ray's control store first (one cheap lookup per actor, no call into the
actor), and the actor's own ``info()`` only when its process changed. Whenever a slot's
address changes (a server died: ``None``; it came back: its new address) the version grows
and waiters wake. A background thread polls until :meth:`SlotWatch.stop`.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

__all__ = ["Slot", "SlotWatch"]

_INFO_TIMEOUT = 10.0


@dataclasses.dataclass
class Slot:
    """What is known of one server.

    Attributes:
        index: The slot (server ``index`` of the fleet).
        address: Where it listens now; ``None`` while it is dead or restarting.
        state: Ray's actor state (``ALIVE``, ``RESTARTING``, ``DEAD``, ...).
        restarts: How often Ray restarted it.
        pid: Its process id (``None`` when unknown).
        node: The id of the Ray node it runs on.
        stats: The server's counters when it last answered.
    """

    index: int
    address: str | None = None
    state: str = "PENDING"
    restarts: int = 0
    pid: int | None = None
    node: str | None = None
    stats: dict[str, int] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The row as ``status()`` reports it (``alive`` added)."""
        return {**dataclasses.asdict(self), "alive": self.address is not None}


def _table_row(ray: Any, actor: Any) -> dict[str, Any] | None:
    """The actor's row in Ray's control store, or ``None`` where this Ray cannot say."""
    try:
        from ray._private import state  # not public API: degrade to info() calls without it
    except ImportError:
        return None
    try:
        row = state.actors(actor_id=actor._actor_id.hex())
    except Exception:  # any failure: fall back to asking the actor
        return None
    return row if isinstance(row, dict) and "State" in row else None


class SlotWatch:
    """The live table of a fleet's servers (the machinery of :class:`~rlmesh.ray.RayFleet`).

    Args:
        ray: The ``ray`` module.
        actors: One actor handle per slot.
        interval: Seconds between polls of the background thread.
    """

    def __init__(self, ray: Any, actors: list[Any], interval: float = 0.5) -> None:
        self._ray = ray
        self._actors = actors
        self._slots = [Slot(k) for k in range(len(actors))]
        self._version = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._polling = threading.Lock()
        self._interval = interval
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> int:
        """Grows whenever a slot's address changes."""
        with self._changed:
            return self._version

    @property
    def addresses(self) -> list[str | None]:
        """Each slot's current address."""
        with self._changed:
            return [slot.address for slot in self._slots]

    def rows(self) -> list[dict[str, Any]]:
        """Every slot as a dict (``status()``)."""
        with self._changed:
            return [slot.as_dict() for slot in self._slots]

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Block until the version differs from ``version`` or ``timeout`` passes."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="rlmesh-fleet-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (waits for the thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_INFO_TIMEOUT + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except Exception:  # Ray going away: keep the last known table
                if self._stop.is_set():
                    return

    def poll(self, stats: bool = False) -> None:
        """Refresh every slot from Ray now (``stats``: ask every live server for counters)."""
        with self._polling:
            for slot, actor in zip(self._slots, self._actors, strict=True):
                self._refresh(slot, actor, stats)

    def _refresh(self, slot: Slot, actor: Any, stats: bool) -> None:
        row = _table_row(self._ray, actor)
        if row is not None:
            slot.state = str(row["State"])
            slot.restarts = int(row.get("NumRestarts", 0))
            moved = row.get("Pid") != slot.pid
            if slot.state != "ALIVE":
                self._set_address(slot, None)
                return
            if not (moved or stats or slot.address is None):
                return
        info = self._info(actor)
        if info is None:
            slot.state = slot.state if row is not None else "UNAVAILABLE"
            self._set_address(slot, None)
            return
        if row is None:
            slot.state = "ALIVE"
            slot.restarts += int(slot.pid is not None and info["pid"] != slot.pid)
        slot.pid, slot.node, slot.stats = int(info["pid"]), str(info["node"]), info["stats"]
        self._set_address(slot, str(info["address"]))

    def _info(self, actor: Any) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._ray.get(actor.info.remote(), timeout=_INFO_TIMEOUT)
        except Exception:  # dead, restarting or slow: not serving now
            return None
        return info

    def _set_address(self, slot: Slot, address: str | None) -> None:
        with self._changed:
            if slot.address != address:
                slot.address = address
                self._version += 1
                self._changed.notify_all()
