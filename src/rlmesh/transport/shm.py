"""Same-host fast path: a shared-memory region the server creates and the client attaches.

When client and server run on one machine, the **server** creates the region of a session: an
anonymous, sealed ``memfd`` (no name in ``/dev/shm``, so nothing another user can name, list
or leave behind), sized to what the session needs and reserved up front with
``posix_fallocate``, so a machine short of memory refuses the region at once (the session
falls back to sockets) instead of faulting on first use. The seals forbid growing and
shrinking it, so no process that can open it (the client, through
``/proc/<server pid>/fd/<n>``, which the kernel allows only to the server's own user or an
administrator) can make the server's mapping fault.

The client checks what it opened (a sealed ``memfd`` of rlmesh's of the stated size) before
mapping it, tells the server whether it could (protocol section 10), and both sides switch to
the region from the next frame on. The region lives as long as the last mapping.

A reply may use the region only if its request said so (a flag in the frame prefix), which
the client sets only when no earlier reply is still unread: pipelined requests never race
for the region. The socket send and receive that carry the header order the memory
accesses. ``RLMESH_SAME_HOST=0`` turns the fast path off.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import socket
import stat
import sys
from typing import Any, Final

__all__ = [
    "MAX_SHM_BYTES", "MIN_SHM_BYTES", "SEALS", "ShmRegion", "enabled", "host_id",
    "pid_namespace", "same_host_socket", "write_pieces",
]

MIN_SHM_BYTES: Final = 128 * 1024
"""The smallest region the server creates."""
MAX_SHM_BYTES: Final = 1 << 30
"""The largest region either side accepts (``RLMESH_SHM_BYTES`` is clamped to it)."""
_NAME: Final = "rlmesh-region"
_PROC_NAME: Final = f"/memfd:{_NAME}"
SEALS: Final = getattr(fcntl, "F_SEAL_SHRINK", 2) | getattr(fcntl, "F_SEAL_GROW", 4)
"""The seals a region must carry: nobody may shrink or grow it."""
_ALL_SEALS: Final = SEALS | getattr(fcntl, "F_SEAL_SEAL", 1)


def enabled() -> bool:
    """Whether the same-host path may be offered or accepted here (Linux, with memfds)."""
    if os.environ.get("RLMESH_SAME_HOST", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return (sys.platform.startswith("linux") and hasattr(os, "memfd_create")
            and hasattr(fcntl, "F_ADD_SEALS"))


def host_id() -> str:
    """Identify this machine's running kernel (same value for every process on it)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def pid_namespace() -> int:
    """Identify this process's pid namespace (0 if unknown): pids mean the same inside one."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def same_host_socket(sock: socket.socket) -> bool:
    """Whether a connected socket's peer is on this machine (unix, loopback, own address)."""
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    try:
        local, peer = sock.getsockname()[0], sock.getpeername()[0]
    except OSError:
        return False
    return bool(local == peer or peer.startswith("127.") or peer in ("::1",))


def write_pieces(view: memoryview, pos: int, pieces: list[Any]) -> int:
    """Copy buffers into ``view`` one after another from ``pos``; returns the end offset."""
    for piece in pieces:
        data = memoryview(piece).cast("B")
        end = pos + data.nbytes
        view[pos:end] = data
        pos = end
    return pos


class ShmRegion:
    """A mapped shared-memory region: a sealed ``memfd`` of a fixed size.

    Make one with :meth:`create` (the server) or :meth:`attach` (the client).

    Args:
        fd: An open descriptor of the region; the region keeps it until :meth:`forget_fd`.
        size: Region size in bytes (checked against the file by the caller).
    """

    def __init__(self, fd: int, size: int) -> None:
        self.size = size
        self.fd: int | None = fd
        self._map = mmap.mmap(fd, size)
        self.view = memoryview(self._map)

    @classmethod
    def create(cls, size: int) -> ShmRegion:
        """Create a region of ``size`` bytes, reserved and sealed (the server's side).

        Raises:
            OSError: If the memory cannot be reserved (``ENOSPC``, ``ENOMEM``, a file size
                limit...): serve over the socket instead.
            ValueError: If ``size`` is out of bounds.
        """
        if not 0 < size <= MAX_SHM_BYTES:
            raise ValueError(f"shared-memory size must be in 1..{MAX_SHM_BYTES}")
        fd = os.memfd_create(_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            os.posix_fallocate(fd, 0, size)  # every page backed now, or an error now
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _ALL_SEALS)
            return cls(fd, size)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, pid: int, fd: int, size: int) -> ShmRegion:
        """Open and map the region the server ``pid`` holds as descriptor ``fd``.

        Raises:
            OSError: If the kernel refuses (another user's server, another pid namespace).
            ValueError: If the file is not a sealed rlmesh region of ``size`` bytes.
        """
        if not (0 < size <= MAX_SHM_BYTES and pid > 0 and fd >= 0):
            raise ValueError("shared-memory offer out of bounds")
        mine = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR | os.O_CLOEXEC)
        try:
            _check(mine, size)
            region = cls(mine, size)
        except BaseException:
            os.close(mine)
            raise
        region.forget_fd()  # the mapping is enough on this side
        return region

    def forget_fd(self) -> None:
        """Close the descriptor (the mapping stays); after the peer has attached."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def write(self, pieces: list[Any]) -> int:
        """Copy ``pieces`` one after another from offset 0; returns the bytes written."""
        return write_pieces(self.view, 0, pieces)

    def read(self, nbytes: int) -> bytearray:
        """A fresh copy of the first ``nbytes`` bytes."""
        return bytearray(self.view[:nbytes])

    def close(self) -> None:
        """Unmap the region and close its descriptor (idempotent)."""
        self.forget_fd()
        view = getattr(self, "view", None)
        if view is not None:
            view.release()
            self.view = memoryview(b"")
            with contextlib.suppress(BufferError):
                self._map.close()


def _check(fd: int, size: int) -> None:
    """Refuse anything but a sealed rlmesh memfd of ``size`` bytes (a server may lie)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size != size:
        raise ValueError("the offered region is not a file of the stated size")
    if not os.readlink(f"/proc/self/fd/{fd}").startswith(_PROC_NAME):
        raise ValueError("the offered descriptor is not an rlmesh shared-memory region")
    if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS != SEALS:
        raise ValueError("the offered region is not sealed against resizing")
