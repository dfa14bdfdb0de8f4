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
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from typing import Any

import cloudpickle

from rlmesh.server.supervisor import DEFAULT_HANG_TIMEOUT, Supervisor, Watched

__all__ = ["Worker", "WorkerPool"]

_live_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _close_live_pools() -> None:
    for pool in list(_live_pools):
        pool.close()


atexit.register(_close_live_pools)


class Worker:
    """One worker process, as its pool sees it.

    Args:
        process: The process.
        control: The parent's end of its control socket (supervised workers only).
    """

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket | None) -> None:
        self.process = process
        self._control = control
        self.listener: socket.socket | None = None
        """A duplicate of the worker's listening socket (sent by a supervised worker)."""
        self.address = ""

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    @property
    def control(self) -> socket.socket:
        """The parent's end of the worker's control socket."""
        assert self._control is not None
        return self._control

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: the signal that killed it)."""
        return self.process.returncode

    def exited(self) -> bool:
        """Whether the process has exited (reaps it)."""
        return self.process.poll() is not None

    def retire(self) -> None:
        """Take its listener out of the port's group, kill the process and reap it."""
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)
        self.release()

    def release(self) -> None:
        """Close the parent's sockets and pipes of this worker."""
        for closable in (self.listener, self._control, self.process.stdout):
            if closable is not None:
                closable.close()


class WorkerPool:
    """Local worker processes, each an rlmesh server built from one env factory.

    Workers that share a port (kind ``serve``) are supervised (see
    :mod:`rlmesh.server.supervisor`): one that exits, or hangs with connections waiting, is
    replaced, and :attr:`pids` follows. A ``vector`` worker holds its client's envs, so a
    replacement could not stand in for it: those are not supervised.

    Args:
        factory: Zero-argument callable building one env (sent to the workers with
            cloudpickle, parent to child only; nothing is pickled on the network).
        commands: Per worker, the worker kind and its arguments (see
            :func:`rlmesh.server.worker_main.worker_main`);
            the token ``{dir}`` is replaced by the pool's private directory.
        start_timeout: Seconds to wait for every worker to be serving.
        env: Extra environment variables for the workers.
        supervise: Watch and replace workers; ``None`` (the default): for ``serve`` workers.
        hang_timeout: Seconds connections may wait in a supervised worker's accept queue
            before it is replaced as hung (a stopped worker is replaced after one second).

    Raises:
        RuntimeError: If a worker fails to start (its error message is included).
    """

    def __init__(self, factory: Callable[[], Any], commands: list[list[str]],
                 start_timeout: float = 60.0, env: dict[str, str] | None = None, *,
                 supervise: bool | None = None,
                 hang_timeout: float = DEFAULT_HANG_TIMEOUT) -> None:
        self._closed = False
        self.directory = tempfile.mkdtemp(prefix="rlmesh-workers-")
        self.workers: list[Worker | None] = []
        self._commands = [[arg.replace("{dir}", self.directory) for arg in command]
                          for command in commands]
        self._supervised = (supervise if supervise is not None
                            else all(command[:1] == ["serve"] for command in commands))
        self._payload = cloudpickle.dumps(factory)
        self._start_timeout = start_timeout
        self._supervisor: Supervisor | None = None
        self._pending: list[Worker] = []
        # The workers inherit the read end of this pipe; it reaches EOF when we die.
        self._liveness_r, self._liveness_w = os.pipe()
        self._env = {**os.environ, **(env or {}), "RLMESH_WORKER_DIR": self.directory}
        _live_pools.add(self)
        try:
            self._start(hang_timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, hang_timeout: float) -> None:
        for index in range(len(self._commands)):
            self.workers.append(self._spawn(index))
        deadline = time.monotonic() + self._start_timeout
        for index, worker in enumerate(self.workers):
            assert worker is not None
            self._wait_ready(index, worker, deadline)
        if self._supervised:
            self._supervisor = Supervisor(
                [w for w in self.workers if w is not None], self._respawn, self._replaced,
                hang_timeout=hang_timeout)
        else:
            os.close(self._liveness_r)
            self._liveness_r = -1

    def _spawn(self, index: int) -> Worker:
        """Start worker ``index`` (it has not said it is ready yet)."""
        control, theirs = socket.socketpair() if self._supervised else (None, None)
        env, fds = self._env, [self._liveness_r]
        if theirs is not None:
            env = {**env, "RLMESH_WORKER_CONTROL": str(theirs.fileno())}
            fds.append(theirs.fileno())
        try:
            log = open(os.path.join(self.directory, f"worker{index}.log"), "ab")  # noqa: SIM115
            with log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "rlmesh.server.worker_main", str(self._liveness_r),
                     *self._commands[index]],
                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                    pass_fds=fds, start_new_session=True)
        except BaseException:
            for sock in (control, theirs):
                if sock is not None:
                    sock.close()
            raise
        finally:
            if theirs is not None:
                theirs.close()
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(self._payload)
        process.stdin.close()
        return Worker(process, control)

    def _wait_ready(self, index: int, worker: Worker, deadline: float) -> None:
        """Wait for worker ``index`` to say it serves; take its address and listener."""
        process = worker.process
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:  # select() fails for fds >= 1024
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = bool(selector.select(max(deadline - time.monotonic(), 0.0)))
        line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
        process.stdout.close()
        if line.startswith("READY "):
            worker.address = line[len("READY "):]
            if self._supervised:
                worker.listener = _receive_listener(worker.control, deadline)
            return
        worker.retire()
        log = os.path.join(self.directory, f"worker{index}.log")
        with open(log, errors="replace") as handle:
            tail = handle.read()[-2000:]
        reason = "timed out" if not ready else f"exited with {process.returncode}"
        raise RuntimeError(f"rlmesh worker {index} failed to start ({reason}):\n{tail}")

    def _respawn(self, index: int) -> Worker:
        """Start a replacement for worker ``index`` and wait until it serves (supervisor)."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        worker = self._spawn(index)
        self._pending.append(worker)  # close() stops it too, should it come meanwhile
        try:
            self._wait_ready(index, worker, time.monotonic() + self._start_timeout)
        finally:
            self._pending.remove(worker)
        if self._closed:
            worker.retire()
            raise RuntimeError("the pool is closed")
        return worker

    def _replaced(self, index: int, worker: Watched | None) -> None:
        assert worker is None or isinstance(worker, Worker)
        self.workers[index] = worker

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The current worker processes."""
        return [w.process for w in self.workers if w is not None]

    @property
    def addresses(self) -> list[str]:
        """Where each worker serves, by position."""
        return [w.address for w in self.workers if w is not None]

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (a replaced worker's pid is gone)."""
        return [w.pid for w in self.workers if w is not None]

    def close(self, timeout: float = 5.0) -> None:
        """Stop every worker (SIGTERM, then SIGKILL) and remove the socket directory."""
        if self._closed:
            return
        self._closed = True
        _live_pools.discard(self)
        if self._supervisor is not None:
            self._supervisor.stop()
        workers = [w for w in [*self.workers, *self._pending] if w is not None]
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in workers:
            try:
                worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout)
            worker.release()
        for fd in (self._liveness_r, self._liveness_w):
            if fd >= 0:
                os.close(fd)
        self._liveness_r = self._liveness_w = -1
        shutil.rmtree(self.directory, ignore_errors=True)


def _receive_listener(control: socket.socket, deadline: float) -> socket.socket | None:
    """The duplicate of its listening socket a worker sends over its control socket."""
    control.settimeout(max(deadline - time.monotonic(), 0.1))
    try:
        _, fds, _, _ = socket.recv_fds(control, 1, 1)
    except OSError:
        return None
    finally:
        control.setblocking(True)
    return socket.socket(fileno=fds[0]) if fds else None
