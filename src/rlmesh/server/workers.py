"""Local worker processes, each an rlmesh server built from one env factory.

Two kinds of worker exist (see :mod:`rlmesh.server.worker_main`, the workers' ``main``): a
share of a vector env on a private unix socket (``rlmesh.make_vec``), and one of the
processes of ``EnvServer(..., workers=N)`` sharing a TCP port.

Nothing outlives its owner: workers are stopped by :meth:`WorkerPool.close`, at interpreter
exit (``atexit``), and on their own when the parent process dies for any reason, SIGKILL
included: each worker holds the read end of a pipe whose only write end is the parent's, and
reads EOF when the parent is gone (unlike Linux's parent-death signal, this does not fire
when merely the parent's creating thread exits). The private directory is removed with the
pool, or by the workers when the parent died.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = ["WorkerPool"]

_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _close_live_pools() -> None:
    for pool in list(_live_pools):
        pool.close()


atexit.register(_close_live_pools)


class WorkerPool:
    """Local worker processes, each an rlmesh server built from one env factory.

    Args:
        factory: Zero-argument callable building one env (sent to the workers with
            cloudpickle, parent to child only; nothing is pickled on the network).
        commands: Per worker, the worker kind and its arguments (see
            :func:`rlmesh.server.worker_main.worker_main`);
            the token ``{dir}`` is replaced by the pool's private directory.
        start_timeout: Seconds to wait for every worker to be serving.
        env: Extra environment variables for the workers.

    Raises:
        RuntimeError: If a worker fails to start (its error message is included).
    """

    def __init__(self, factory: Callable[[], Any], commands: list[list[str]],
                 start_timeout: float = 60.0, env: dict[str, str] | None = None) -> None:
        self._closed = False
        self.directory = tempfile.mkdtemp(prefix="rlmesh-workers-")
        self.processes: list[subprocess.Popen[bytes]] = []
        self._liveness_w = -1
        self._env = {**os.environ, **(env or {}), "RLMESH_WORKER_DIR": self.directory}
        self.addresses: list[str] = []
        _live_pools.add(self)
        try:
            self._start(cloudpickle.dumps(factory), commands, start_timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, payload: bytes, commands: list[list[str]], timeout: float) -> None:
        # The workers inherit the read end of this pipe; it reaches EOF when we die.
        liveness_r, self._liveness_w = os.pipe()
        try:
            for index, command in enumerate(commands):
                args = [arg.replace("{dir}", self.directory) for arg in command]
                log = open(os.path.join(self.directory, f"worker{index}.log"), "wb")  # noqa: SIM115
                with log:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "rlmesh.server.worker_main", str(liveness_r), *args],
                        env=self._env,
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                        pass_fds=(liveness_r,), start_new_session=True)
                self.processes.append(process)
                assert process.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.write(payload)
                process.stdin.close()
        finally:
            os.close(liveness_r)
        deadline = time.monotonic() + timeout
        for index, process in enumerate(self.processes):
            self.addresses.append(self._wait_ready(index, process, deadline))

    def _wait_ready(self, index: int, process: subprocess.Popen[bytes], deadline: float) -> str:
        assert process.stdout is not None
        remaining = max(deadline - time.monotonic(), 0.0)
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
        process.stdout.close()
        if line.startswith("READY "):
            return line[len("READY "):]
        process.kill()
        process.wait()
        log = os.path.join(self.directory, f"worker{index}.log")
        with open(log, errors="replace") as handle:
            tail = handle.read()[-2000:]
        reason = "timed out" if not ready else f"exited with {process.returncode}"
        raise RuntimeError(f"rlmesh worker {index} failed to start ({reason}):\n{tail}")

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [p.pid for p in self.processes]

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker (SIGTERM, then SIGKILL) and remove the socket directory."""
        if self._closed:
            return
        self._closed = True
        _live_pools.discard(self)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
            if process.stdout is not None:  # unread when another worker failed to start
                process.stdout.close()
        if self._liveness_w >= 0:
            os.close(self._liveness_w)
            self._liveness_w = -1
        shutil.rmtree(self.directory, ignore_errors=True)


