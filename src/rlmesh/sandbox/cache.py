"""The sandbox cache: where built environments and wheels live, built once under a lock.

The cache root is ``$RLMESH_CACHE_DIR``, else ``$XDG_CACHE_HOME/rlmesh``, else
``~/.cache/rlmesh``. Each entry is a directory named by a hash of everything that shapes
it. An entry is built in a fresh temporary directory beside its final place, marked
complete, and renamed into place, all under an exclusive file lock: a concurrent builder
waits and then reuses the entry, and a builder that crashed leaves no half-built entry
behind that anyone would take for a finished one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "COMPLETE",
    "CachedEntry",
    "build_once",
    "cache_key",
    "cache_root",
    "entries",
    "prune",
    "touch",
]

COMPLETE = ".complete"
"""The marker file of a finished entry; it holds the entry's description as JSON."""

_USED = ".last-used"


def cache_root() -> Path:
    """The sandbox cache's root directory (not created here)."""
    explicit = os.environ.get("RLMESH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rlmesh"


def cache_key(parts: Mapping[str, Any]) -> str:
    """A short stable hash of ``parts`` (JSON with sorted keys): a cache entry's name."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _make_private(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def build_once(final: Path, build: Callable[[Path], None], describe: Mapping[str, Any]) -> Path:
    """The finished entry at ``final``, built by ``build(temporary_dir)`` if it is missing.

    Args:
        final: Where the entry lives once finished.
        build: Fills the temporary directory it is given; raising abandons it.
        describe: What the entry was made from, written into its completion marker (what
            ``rlmesh envs list`` shows).

    Returns:
        ``final``.
    """
    if (final / COMPLETE).is_file():
        return final
    _make_private(final.parent)
    with _locked(final.parent / f"{final.name}.lock"):
        if (final / COMPLETE).is_file():  # another builder finished while we waited
            return final
        temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            build(temporary)
            marker = {**describe, "built": time.time()}
            (temporary / COMPLETE).write_text(json.dumps(marker, sort_keys=True) + "\n")
            if final.exists():  # an unfinished leftover of a crashed builder
                shutil.rmtree(final)
            os.rename(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return final


def touch(entry: Path) -> None:
    """Record that ``entry`` was used now (``rlmesh envs prune`` goes by last use)."""
    with contextlib.suppress(OSError):
        (entry / _USED).write_text(f"{time.time()}\n")


@dataclass(frozen=True)
class CachedEntry:
    """One finished entry of the cache.

    Args:
        path: Its directory.
        description: What it was made from (its completion marker).
        last_used: When it was last used (seconds since the epoch), or built.
        size_bytes: The bytes its files take.
    """

    path: Path
    description: Mapping[str, Any]
    last_used: float
    size_bytes: int


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _read_entry(path: Path) -> CachedEntry | None:
    try:
        description = json.loads((path / COMPLETE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(description, dict):
        return None
    last = float(description.get("built", 0.0))
    with contextlib.suppress(OSError, ValueError):
        last = float((path / _USED).read_text().strip())
    return CachedEntry(path, description, last, _size(path))


def entries(kind: str = "envs") -> list[CachedEntry]:
    """The finished entries of one part of the cache (``"envs"`` or ``"wheels"``)."""
    folder = cache_root() / kind
    if not folder.is_dir():
        return []
    found = (_read_entry(child) for child in sorted(folder.iterdir())
             if child.is_dir() and not child.name.startswith("."))
    return [entry for entry in found if entry is not None]


def prune(older_than_seconds: float = 0.0, kind: str = "envs") -> list[CachedEntry]:
    """Remove the entries not used for ``older_than_seconds``; returns those removed.

    Each removal waits for the entry's build lock, so an entry is never removed while it
    is being built. A server already running from a removed environment keeps running
    (its files stay open), but do not prune while sandboxes start.
    """
    removed: list[CachedEntry] = []
    cutoff = time.time() - older_than_seconds
    for entry in entries(kind):
        if entry.last_used > cutoff:
            continue
        with _locked(entry.path.parent / f"{entry.path.name}.lock"):
            shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry)
    return removed
