"""``docker run`` flags: the hardening every sandbox gets, and SandboxRuntime's options.

Every container runs with all capabilities dropped (``--cap-drop ALL``), no privilege gain
through setuid files (``--security-opt no-new-privileges``), and its one port published on the
host's loopback interface only, at a port the kernel picks (``-p 127.0.0.1::PORT``). The
runtime options (``gpus``, ``devices``, ``volumes``, ``user``) are checked before they become
flags, so a malformed one is a clear ``ValueError`` and never a half-parsed Docker argument.

Not added: ``--ipc=host``. rlmesh's same-host link maps a sealed ``memfd`` the server holds,
reached through ``/proc/<pid>/fd``, which needs client and server in one pid namespace; a
shared IPC namespace does not give that, and ``--pid=host`` would let the sandbox see and
signal the host's processes. Across the container boundary the client and server therefore
negotiate plain sockets (the fallback every connection already has).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from rlmesh.sandbox.options import SandboxRuntime

__all__ = ["HARDENING", "runtime_flags", "volume_mounts"]

HARDENING = ("--cap-drop", "ALL", "--security-opt", "no-new-privileges")
"""Flags every sandbox container runs with."""
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$")
_GPUS = re.compile(r"^(?:all|\d+|device=[\w,.:-]+)$")
_DEVICE = re.compile(r"^/dev/[\w./-]+(?::/dev/[\w./-]+)?(?::[rwm]{1,3})?$")


def _gpus(value: str | int | None) -> list[str]:
    if value is None:
        return []
    text = str(value)
    if not _GPUS.match(text):
        raise ValueError(f"gpus must be 'all', a count or 'device=ID[,ID]', got {value!r}")
    return ["--gpus", text]


def _devices(devices: Sequence[str]) -> list[str]:
    if isinstance(devices, str):
        raise ValueError("devices is a list of device paths, not one string")
    flags = []
    for device in devices:
        if not isinstance(device, str) or not _DEVICE.match(device):
            raise ValueError(f"a device is '/dev/NAME[:/dev/NAME][:rwm]', got {device!r}")
        flags += ["--device", device]
    return flags


def _split_volume(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 2:
        return parts[0], parts[1], "rw"
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"a volume is 'HOST:CONTAINER[:ro|rw]', got {spec!r}")


def volume_mounts(volumes: Mapping[str, str] | Sequence[str]) -> list[tuple[str, str, bool]]:
    """The bind mounts ``volumes`` asks for, as ``(host, container, read_only)``.

    Raises:
        ValueError: A path is relative, holds a comma, the host path does not exist, or the
            mode is not ``ro``/``rw``.
    """
    if isinstance(volumes, str):
        raise ValueError("volumes is a mapping or a list of 'HOST:CONTAINER[:ro]' strings")
    if isinstance(volumes, Mapping):
        items = [(str(host), str(inside), "rw") for host, inside in volumes.items()]
    else:
        items = [_split_volume(str(spec)) for spec in volumes]
    mounts = []
    for host, inside, mode in items:
        if mode not in ("ro", "rw"):
            raise ValueError(f"a volume's mode is 'ro' or 'rw', got {mode!r}")
        if not (host.startswith("/") and inside.startswith("/")) or "," in host + inside:
            raise ValueError(f"volume paths are absolute and hold no comma: {host!r}:{inside!r}")
        if not Path(host).exists():
            raise ValueError(f"volume source {host!r} does not exist on this host")
        mounts.append((host, inside, mode == "ro"))
    return mounts


def runtime_flags(runtime: SandboxRuntime) -> list[str]:
    """The ``docker run`` flags for ``runtime``'s gpus, devices, volumes and user.

    Raises:
        ValueError: An option is malformed (the message says which and how it should look).
    """
    flags = [*_gpus(runtime.gpus), *_devices(runtime.devices)]
    for host, inside, read_only in volume_mounts(runtime.volumes):
        mount = f"type=bind,source={host},target={inside}" + (",readonly" if read_only else "")
        flags += ["--mount", mount]
    if runtime.user is not None:
        if not _USER.match(str(runtime.user)):
            raise ValueError(f"user is 'NAME|UID[:GROUP|GID]', got {runtime.user!r}")
        flags += ["--user", str(runtime.user)]
    return flags
