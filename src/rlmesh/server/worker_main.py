"""The ``main`` of a worker process: ``python -m rlmesh.server.worker_main FD KIND ARGS...``.

:class:`rlmesh.server.workers.WorkerPool` starts these processes; each reads the
cloudpickled env factory from stdin, builds the server its kind asks for, prints
``READY address`` on stdout and serves, until told to stop (SIGTERM/SIGINT) or until its
parent is gone (the liveness pipe reads EOF).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym

from rlmesh.server.options import ServeOptions
from rlmesh.server.server import EnvServer, stop_on_signals

__all__ = ["worker_main"]


def _build_server(kind: str, args: list[str], factory: Callable[[], Any]) -> Any:
    if kind == "vector":  # num_envs, autoreset mode, unix socket path
        from rlmesh.server.sync_vector import LeanSyncVectorEnv  # (Gymnasium 1's API)

        env = LeanSyncVectorEnv(
            [factory] * int(args[0]), autoreset_mode=gym.vector.AutoresetMode(args[1]))
        return EnvServer(env, f"unix://{args[2]}")
    if kind == "serve":  # address (shared through SO_REUSEPORT), ServeOptions as JSON
        options = ServeOptions(**json.loads(args[1]))
        return EnvServer(factory, args[0], options=options, reuse_port=True)
    raise ValueError(f"unknown worker kind {kind!r}")


def _send_listener(server: EnvServer) -> socket.socket | None:
    """Give a supervising parent a duplicate of this worker's listening socket.

    The parent watches the accept queue through it, and shuts it down (which takes it out
    of the port's ``SO_REUSEPORT`` group) should this process hang.
    """
    control_fd = os.environ.pop("RLMESH_WORKER_CONTROL", None)
    if control_fd is None:
        return None
    control = socket.socket(fileno=int(control_fd))
    listener = getattr(server, "_listener", None)  # EnvServer has no public accessor
    fds = [listener.fileno()] if isinstance(listener, socket.socket) else []
    socket.send_fds(control, [b"L"], fds)
    return control


def worker_main(argv: list[str]) -> int:
    """Entry point of a worker process (``python -m rlmesh.server.worker_main FD KIND ARGS...``).

    Reads the cloudpickled env factory from stdin, builds the server KIND asks for
    (``vector``: a ``SyncVectorEnv`` share for :func:`rlmesh.make_vec`; ``serve``: one of the
    processes of ``EnvServer(..., workers=N)``), prints ``READY address`` on stdout, and
    serves until told to stop (SIGTERM/SIGINT) or until the parent's liveness pipe closes.
    """
    stop_on_signals()
    liveness_fd, kind, args = int(argv[0]), argv[1], argv[2:]
    parent_pid = os.getppid()
    factory = cloudpickle.loads(sys.stdin.buffer.read())
    server = _build_server(kind, args, factory)

    def watch_parent() -> None:
        with contextlib.suppress(OSError):
            while os.read(liveness_fd, 1):
                pass  # the parent never writes; EOF means it is gone
        server.shutdown()
        directory = os.environ.get("RLMESH_WORKER_DIR")
        if directory and os.getppid() != parent_pid:  # the parent died: tidy up for it
            shutil.rmtree(directory, ignore_errors=True)

    threading.Thread(target=watch_parent, name="rlmesh-parent-watch", daemon=True).start()
    control = _send_listener(server)  # kept open: it closes when this process exits
    sys.stdout.write(f"READY {server.address}\n")
    sys.stdout.flush()
    server.serve(banner=False)
    if control is not None:
        control.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
