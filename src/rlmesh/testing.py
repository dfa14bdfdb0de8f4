"""Helpers for testing code that uses rlmesh: real servers in child processes.

Example::

    from rlmesh.testing import spawn_server
    from rlmesh.numpy import RemoteEnv

    with spawn_server("CartPole-v1") as server:
        env = RemoteEnv(server.address)
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ServerProcess", "spawn_server"]


class ServerProcess:
    """An ``rlmesh serve`` child process; stops (and is reaped) on :meth:`stop` or exit.

    Attributes:
        address: The resolved address the child listens on.
        process: The ``subprocess.Popen`` handle.
    """

    def __init__(self, process: subprocess.Popen[bytes], address: str, tmpdir: str,
                 lifeline: int | None = None) -> None:
        self.process = process
        self.address = address
        self._tmpdir = tmpdir
        self._lifeline = lifeline
        """The write end of the pipe the child watches: it stops once the pipe closes."""

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the child to stop (SIGTERM), kill it if it does not, and reap it.

        Returns:
            The child's exit code.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)
        with contextlib.suppress(OSError):
            for name in os.listdir(self._tmpdir):
                os.unlink(os.path.join(self._tmpdir, name))
            os.rmdir(self._tmpdir)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def spawn_server(
    target: str,
    *,
    address: str = "127.0.0.1:0",
    kwargs: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ServerProcess:
    """Start ``rlmesh serve TARGET`` in a child process and wait until it listens.

    The child is tied to this process: it stops by itself (and removes its ready file and
    log) once this process is gone, even if it was killed and never called :meth:`stop`.

    Args:
        target: A registered env id or ``module:callable`` (see ``rlmesh serve --help``).
        address: Where the child binds; port 0 (the default) picks a free port.
        kwargs: Keyword arguments for the env constructor, passed as JSON.
        extra_args: More command-line arguments for ``rlmesh serve``.
        env: Environment variables for the child (default: this process's).
        timeout: Seconds to wait for the child to be ready.

    Returns:
        The running :class:`ServerProcess`.

    Raises:
        RuntimeError: If the child exits or is not ready in time.
    """
    tmpdir = tempfile.mkdtemp(prefix="rlmesh-test-")
    ready = Path(tmpdir) / "ready"
    cmd = [sys.executable, "-m", "rlmesh", "serve", target, "--address", address,
           "--ready-file", str(ready), *extra_args]
    if kwargs:
        cmd += ["--kwargs", json.dumps(kwargs)]
    log_path = Path(tmpdir) / "stderr.log"
    # A pipe only this process writes to: the child reads EOF once we are gone (however we
    # end), then shuts down and removes the private directory (``rlmesh serve --parent-fd``).
    readable, lifeline = os.pipe()
    child_env = {**(os.environ if env is None else env), "RLMESH_SANDBOX_DIR": tmpdir}
    try:
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [*cmd, "--parent-fd", str(readable)], env=child_env, stdin=subprocess.DEVNULL,
                stderr=log_file, pass_fds=(readable,))
    except BaseException:
        os.close(lifeline)
        raise
    finally:
        os.close(readable)
    server = ServerProcess(process, "", tmpdir, lifeline)
    deadline = time.monotonic() + timeout
    while True:
        if ready.exists():
            text = ready.read_text().strip()
            if text:
                server.address = text
                break
        if process.poll() is not None:
            err = log_path.read_text(errors="replace")
            server.stop()
            raise RuntimeError(f"rlmesh serve {target} exited with {process.returncode}:\n{err}")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"rlmesh serve {target} was not ready within {timeout}s")
        time.sleep(0.02)
    return server
