"""Owner labels on sandbox containers, and reaping the containers of dead owners.

Every container the Docker backend starts carries labels naming its owner: the process id,
that process's start time (so a reused pid is not mistaken for the owner), its pid namespace
and the machine's boot id. An owner that dies without closing its sandbox (SIGKILL, a crash)
leaves its container running; the next start on the same machine and pid namespace finds it by
these labels and removes it. Containers of owners elsewhere (another host sharing the daemon,
another pid namespace) are left alone: whether their owner lives cannot be seen from here.
"""

from __future__ import annotations

import json
import os

from rlmesh.sandbox.docker_engine import docker
from rlmesh.transport import shm

__all__ = ["LABEL", "is_orphan", "owner_labels", "reap_orphans", "start_time"]

LABEL = "rlmesh.sandbox"
"""The label every sandbox container carries (value ``"1"``)."""
_PID, _START = f"{LABEL}.owner.pid", f"{LABEL}.owner.start"
_PIDNS, _BOOT = f"{LABEL}.owner.pidns", f"{LABEL}.owner.boot"


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in "ZX":
        return None
    return fields[19]


def owner_labels(pid: int | None = None) -> dict[str, str]:
    """The labels naming ``pid`` (default: this process) as a container's owner."""
    pid = os.getpid() if pid is None else pid
    return {LABEL: "1", _PID: str(pid), _START: start_time(pid) or "",
            _PIDNS: str(shm.pid_namespace()), _BOOT: shm.host_id()}


def is_orphan(labels: dict[str, str]) -> bool:
    """Whether a container with these labels belongs to a dead owner visible from here."""
    if labels.get(_BOOT) != shm.host_id() or labels.get(_PIDNS) != str(shm.pid_namespace()):
        return False
    pid = labels.get(_PID, "")
    if not pid.isdigit():
        return False
    started = start_time(int(pid))
    return started is None or started != labels.get(_START)


def reap_orphans() -> list[str]:
    """Remove every sandbox container whose owner is dead; returns their ids."""
    listed = docker(["ps", "-aq", "--no-trunc", "--filter", f"label={LABEL}=1"]).stdout.split()
    if not listed:
        return []
    inspected = docker(["inspect", "--format", "{{.Id}} {{json .Config.Labels}}", *listed],
                       check=False).stdout
    orphans = []
    for line in inspected.splitlines():
        ident, _, labels = line.partition(" ")
        try:
            parsed = json.loads(labels) or {}
        except ValueError:
            continue
        if is_orphan(parsed):
            orphans.append(ident)
    if orphans:
        docker(["rm", "-f", *orphans], check=False, timeout=120)
    return orphans
