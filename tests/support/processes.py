"""Child processes as Linux shows them in ``/proc``: alive, children, reaped, killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(condition: Callable[[], bool], within: float = 5.0, poll: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``within`` seconds pass; whether it held."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:  # gone before the open, or between the open and the read (ESRCH)
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def live_children(pid: int) -> set[int]:
    """Running processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.add(int(entry))
    return found


def wait_dead(pids: list[int], within: float) -> list[int]:
    """Wait up to ``within`` seconds for every pid to be gone; returns those still alive."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def kill_stragglers(pids: list[int]) -> None:
    """SIGKILL whatever a failed test left running (only pids this test started)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Kill ``child`` if it still runs, reap it and close its output pipes."""
    if child.poll() is None:
        child.kill()
        child.wait(5)
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def rlmesh_cmd(*args: str, cwd: Path | None = None, timeout: float = 90,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rlmesh ARGS`` to completion; its output is captured as text."""
    return subprocess.run([sys.executable, "-m", "rlmesh", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env or dict(os.environ))


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill a child started with start_new_session=True, and its whole process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def exit_code_or_stacks(process: subprocess.Popen[Any], timeout: float, log: Path) -> int:
    """``process``'s exit code within ``timeout`` seconds; past that, fail with its stacks.

    Started with ``PYTHONFAULTHANDLER=1``, a Python child prints every thread's stack to its
    stderr on SIGABRT: a child that hangs is made to, and the test fails with what ``log``
    (its output) then holds, so that a rare hang says where it hung.
    """
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        output = log.read_text(errors="replace") if log.exists() else "(no output)"
        raise AssertionError(f"{process.args} did not exit within {timeout} s; its output "
                             f"and threads (SIGABRT):\n{output}") from None
