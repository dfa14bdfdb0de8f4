"""A server and its supervisor: ``--ready-file`` (the bound address) and ``--parent-fd``.

``--ready-file`` tells a supervisor the address a server is bound to, atomically and
safely. ``--parent-fd`` (hidden; sandboxes use it) ties the server to its supervisor: the
server stops when that pipe reads EOF, which happens when the supervisor dies for any
reason, SIGKILL included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable

__all__ = ["watch_parent", "write_ready"]


def write_ready(path: str, address: str) -> None:
    """Write ``address`` to ``path`` atomically (for supervisors waiting on a bind).

    The text goes into a new file of an unpredictable name next to ``path``, created
    exclusively (``tempfile.mkstemp``: a file or symlink planted there in advance is never
    opened), which then replaces ``path`` (a symlink at ``path`` is replaced, not followed).
    It gets the permissions ``open`` would give it (0666 less the umask).
    """
    directory, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            handle.write(address + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process's umask, read without changing it (Linux); 0o022 if it cannot be read."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def watch_parent(fd: int, stop: Callable[[], None]) -> threading.Thread:
    """Call ``stop`` once the pipe ``fd`` reads EOF (its writer, the parent, is gone).

    The parent never writes; it holds the write end until it closes it or dies. Then the
    private directory a sandbox gave this server (``RLMESH_SANDBOX_DIR``: its socket, ready
    file and log) is removed too, since a parent that died cannot. The watcher is a daemon
    thread, returned started.
    """
    directory = os.environ.pop("RLMESH_SANDBOX_DIR", None)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        if directory:  # first: once stopped, the process may exit before this thread runs
            shutil.rmtree(directory, ignore_errors=True)
        stop()

    thread = threading.Thread(target=watch, name="rlmesh-parent-watch", daemon=True)
    thread.start()
    return thread
