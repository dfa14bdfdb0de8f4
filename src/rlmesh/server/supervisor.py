"""Watching the worker processes of ``EnvServer(..., workers=N)``: replace dead or hung ones.

The workers share one TCP port (``SO_REUSEPORT``): the kernel hands each new connection to
one of the listeners in the group, whether or not its process is serving. A dead worker's
listener leaves the group with it, but a stopped or hung worker keeps its share of the new
connections, which wait in its accept queue until their clients time out.

The parent holds a duplicate of each worker's listening socket (the worker sends it over a
control socket when it starts). Every ``interval`` (0.25 s) the :class:`Supervisor` looks at
each worker: whether it exited (its end of the control socket closes, which wakes the
supervisor at once), whether it is stopped (``/proc``, Linux), and how many connections wait
in its listener's accept queue (``TCP_INFO``, Linux). A worker that is stopped for a second,
or whose queue holds connections for ``hang_timeout`` seconds while no new socket appears
among its descriptors (it accepts none), is hung: its listener is shut down through the
duplicate (which takes it out of the reuseport group at once, and resets the connections
waiting in it), the process is killed, and a new worker takes its place. A worker that keeps
dying is restarted with a growing delay (0.5 s doubling to 60 s); one that exits with
status 0 (it was told to stop: SIGTERM, or a client's allowed shutdown) is not replaced.

What a hung worker costs until then: its share (1/N) of the new connections, for up to about
1.25 s when it is stopped and ``hang_timeout`` + 0.25 s (10.25 s by default) otherwise; those
clients wait, and the ones still waiting when it is found get a reset connection. Its open
sessions end with it. A hung worker that receives no new connection is not detected (unless
stopped), and costs nothing but its sessions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["DEFAULT_HANG_TIMEOUT", "Supervisor", "Watched"]

log = logging.getLogger("rlmesh.server")

DEFAULT_HANG_TIMEOUT = 10.0
"""Seconds connections may wait in a running worker's accept queue before it counts as hung."""
STOPPED_GRACE = 1.0
"""Seconds a stopped (SIGSTOP) worker is given before it counts as hung."""
_TCPI_UNACKED = 24
"""Offset in ``struct tcp_info`` of ``tcpi_unacked``: a listener's accept-queue length."""
_MAX_DELAY = 60.0
_STABLE = 10.0
"""Seconds a worker must have served for its death to be restarted without a delay."""


class Watched(Protocol):
    """What the supervisor needs of a worker."""

    @property
    def pid(self) -> int:
        """The worker's process id."""
        ...

    @property
    def control(self) -> socket.socket:
        """The parent's end of the worker's control socket (EOF when the worker exits)."""
        ...

    @property
    def listener(self) -> socket.socket | None:
        """A duplicate of the worker's listening socket, if it sent one."""
        ...

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: the signal that killed it)."""
        ...

    def exited(self) -> bool:
        """Whether the process has exited (reaps it)."""
        ...

    def retire(self) -> None:
        """Shut the listener duplicate down, kill the process and reap it."""
        ...


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal (``T`` in ``/proc/PID/stat``; Linux only)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"T"


def accept_queue(listener: socket.socket | None) -> int:
    """Connections waiting in a TCP listener's accept queue (0 where this cannot be read)."""
    if listener is None or not hasattr(socket, "TCP_INFO"):
        return 0
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return 0
    if len(info) < _TCPI_UNACKED + 4:
        return 0
    queued: int = struct.unpack_from("<I", info, _TCPI_UNACKED)[0]
    return queued


def socket_inodes(pid: int) -> frozenset[str]:
    """The sockets among the descriptors of ``pid`` (``socket:[inode]``; Linux only)."""
    found = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return frozenset()
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:"):
                found.add(target)
    return frozenset(found)


class _Slot:
    """One worker position: its current worker, how it is faring, when to restart it."""

    def __init__(self, worker: Watched | None) -> None:
        self.worker = worker
        self.started = time.monotonic()
        self.suspect_since: float | None = None
        self.sockets: frozenset[str] = frozenset()
        self.delay = 0.0
        self.restart_at = 0.0

    def hung(self, now: float, hang_timeout: float) -> str | None:
        """Why the worker counts as hung now, or ``None`` (updates the suspicion)."""
        assert self.worker is not None
        is_stopped = stopped(self.worker.pid)
        queued = accept_queue(self.worker.listener)
        if not is_stopped and not self._stuck(queued):
            self.suspect_since = None
            return None
        if self.suspect_since is None:
            self.suspect_since = now
        waited = now - self.suspect_since
        if is_stopped and waited >= min(STOPPED_GRACE, hang_timeout):
            return f"stopped for {waited:.1f}s"
        if queued and waited >= hang_timeout:
            return f"{queued} connections waiting for {waited:.1f}s"
        return None

    def _stuck(self, queued: int) -> bool:
        """Whether connections wait and the worker accepted none since the last look.

        A new socket among the worker's descriptors is taken for an accepted connection.
        """
        if not queued:
            self.sockets = frozenset()
            return False
        assert self.worker is not None
        sockets = socket_inodes(self.worker.pid)
        accepted = bool(sockets - self.sockets)
        self.sockets = sockets
        return not accepted


class Supervisor:
    """A thread that watches workers, and replaces those that die or hang.

    Args:
        workers: The workers at start, by position.
        respawn: Starts a new worker for a position (waits until it serves; raises
            ``RuntimeError`` if it fails to start).
        on_change: Called with the position and its new worker (``None`` while a failed
            position waits for its next restart).
        interval: Seconds between two looks at every worker.
        hang_timeout: See :data:`DEFAULT_HANG_TIMEOUT`.
    """

    def __init__(self, workers: list[Watched], respawn: Callable[[int], Watched],
                 on_change: Callable[[int, Watched | None], None], *,
                 interval: float = 0.25, hang_timeout: float = DEFAULT_HANG_TIMEOUT) -> None:
        self._slots = [_Slot(worker) for worker in workers]
        self._respawn, self._on_change = respawn, on_change
        self._interval, self._hang_timeout = interval, hang_timeout
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="rlmesh-workers-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching (a restart under way finishes first); idempotent."""
        if not self._stopping:
            self._stopping = True
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            while not self._stopping:
                self._register(selector)
                for key, _ in selector.select(self._interval):
                    if key.data is not None and not self._stopping:
                        self._replace(key.data, "exited")  # its control socket closed
                if not self._stopping:
                    self._look()

    def _register(self, selector: selectors.BaseSelector) -> None:
        """Watch the control socket of every current worker, and only those."""
        current = {id(s.worker.control): s for s in self._slots if s.worker is not None}
        for key in list(selector.get_map().values()):
            if key.data is not None and id(key.fileobj) not in current:
                selector.unregister(key.fileobj)
        watched = {id(key.fileobj) for key in selector.get_map().values()}
        for ident, slot in current.items():
            if ident not in watched:
                assert slot.worker is not None
                selector.register(slot.worker.control, selectors.EVENT_READ, slot)

    def _look(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if self._stopping:
                return
            if slot.worker is None:
                if now >= slot.restart_at:
                    self._start(slot)
            elif slot.worker.exited():
                self._replace(slot, "exited")
            else:
                reason = slot.hung(now, self._hang_timeout)
                if reason is not None:
                    self._replace(slot, f"hung ({reason})")

    def _replace(self, slot: _Slot, reason: str) -> None:
        worker = slot.worker
        if worker is None:
            return
        worker.retire()
        index = self._slots.index(slot)
        if reason == "exited" and worker.returncode == 0:  # it was told to stop: let it be
            log.info("worker %d (pid %d) stopped; not replacing it", index, worker.pid)
            slot.worker, slot.restart_at = None, float("inf")
            self._on_change(index, None)
            return
        log.warning("worker %d (pid %d) %s (status %s); replacing it", index, worker.pid,
                    reason, worker.returncode)
        lived = time.monotonic() - slot.started
        # A worker that dies soon after it started is restarted with a growing delay.
        slot.delay = 0.0 if lived >= _STABLE else min(max(2 * slot.delay, 0.5), _MAX_DELAY)
        slot.worker, slot.restart_at = None, time.monotonic() + slot.delay
        self._on_change(index, None)
        if slot.delay == 0.0:
            self._start(slot)

    def _start(self, slot: _Slot) -> None:
        index = self._slots.index(slot)
        try:
            worker = self._respawn(index)
        except (RuntimeError, OSError) as exc:
            if self._stopping:  # the pool is closing: it stopped the new worker
                return
            slot.delay = min(max(2 * slot.delay, 1.0), _MAX_DELAY)
            slot.restart_at = time.monotonic() + slot.delay
            log.error("worker %d could not be restarted (next try in %.0fs): %s",
                      index, slot.delay, exc)
            return
        slot.worker, slot.started, slot.suspect_since, slot.sockets = (
            worker, time.monotonic(), None, frozenset())
        self._on_change(index, worker)
        log.info("worker %d restarted as pid %d", index, worker.pid)
