"""``--ready-file``: tell a supervisor the address a server is bound to, atomically and safely."""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["write_ready"]


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
