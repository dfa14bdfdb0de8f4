"""Same-host fast path: reply bodies through a shared-memory region instead of the socket.

When client and server run on one machine, the client creates a private region in
``/dev/shm`` and names it in its HELLO. The server maps it, and from then on writes the
bodies (array bytes) of its replies into the region and sends only the small header over the
socket; the client copies the body out into a fresh buffer before it returns, so an
observation the user holds is never overwritten. The file is unlinked as soon as both sides
have mapped it, so the memory disappears with the last process that maps it: no segment
outlives its owners, whatever kills them.

A reply may use the region only if its request said so (a flag in the frame prefix), which
the client sets only when no earlier reply is still unread: pipelined requests never race
for the region. The socket send and receive that carry the header order the memory
accesses. ``RLMESH_SAME_HOST=0`` turns the fast path off.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import socket
import sys
from typing import Any

__all__ = [
    "DEFAULT_SHM_BYTES", "MAX_SHM_BYTES", "SHM_DIR", "ShmRegion", "enabled", "host_id",
    "same_host_socket", "write_pieces",
]

SHM_DIR = "/dev/shm"
DEFAULT_SHM_BYTES = 64 * 1024 * 1024
"""Region size unless ``RLMESH_SHM_BYTES`` says otherwise (read at each connection)."""
MAX_SHM_BYTES = 1 << 30
_PREFIX = "rlmesh-"


def enabled() -> bool:
    """Whether the same-host path may be offered or accepted here."""
    if os.environ.get("RLMESH_SAME_HOST", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux") and os.access(SHM_DIR, os.W_OK)


def host_id() -> str:
    """Identify this machine's running kernel (same value for every process on it)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


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
    """A mapped shared-memory region (a file in ``/dev/shm``, unlinked early).

    Args:
        name: File name inside ``/dev/shm``.
        size: Region size in bytes.
        create: Create the file (the client) or open an existing one (the server).
    """

    def __init__(self, name: str, size: int, *, create: bool) -> None:
        if not name.startswith(_PREFIX) or "/" in name or len(name) > 64:
            raise ValueError(f"invalid shared-memory name {name!r}")
        self.name = name
        self.size = size
        self._path = os.path.join(SHM_DIR, name)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(self._path, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            elif os.fstat(fd).st_size != size:
                raise ValueError("shared-memory region has an unexpected size")
            self._map = mmap.mmap(fd, size)
        except BaseException:
            if create:
                self.unlink()
            raise
        finally:
            os.close(fd)
        self.view = memoryview(self._map)

    @classmethod
    def create(cls, size: int | None = None) -> ShmRegion:
        """Create a fresh region with a random name (size: ``RLMESH_SHM_BYTES`` or 64 MiB)."""
        if size is None:
            size = int(os.environ.get("RLMESH_SHM_BYTES", DEFAULT_SHM_BYTES))
        if not 0 < size <= MAX_SHM_BYTES:
            raise ValueError(f"shared-memory size must be in 1..{MAX_SHM_BYTES}")
        return cls(f"{_PREFIX}{os.getpid()}-{secrets.token_hex(8)}", size, create=True)

    def unlink(self) -> None:
        """Remove the name; the memory lives on until the last mapping closes."""
        with contextlib.suppress(OSError):
            os.unlink(self._path)

    def write(self, pieces: list[Any]) -> int:
        """Copy ``pieces`` one after another from offset 0; returns the bytes written."""
        return write_pieces(self.view, 0, pieces)

    def read(self, nbytes: int) -> bytearray:
        """A fresh copy of the first ``nbytes`` bytes."""
        return bytearray(self.view[:nbytes])

    def close(self) -> None:
        """Unmap the region (idempotent)."""
        view = getattr(self, "view", None)
        if view is not None:
            view.release()
            self.view = memoryview(b"")
            with contextlib.suppress(BufferError):
                self._map.close()
