"""Shared fixtures: real servers on 127.0.0.1 port 0, in threads or child processes."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlmesh import EnvServer
from rlmesh.testing import ServerProcess, spawn_server

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    # Run as a background job of a shell, the suite inherits SIGINT ignored, and so would
    # every child it starts: Ctrl+C tests need the children to start with the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def serve() -> Iterator[Callable[..., EnvServer]]:
    """Start an in-process EnvServer on a free loopback port; shut down after the test.

    Usage: ``server = serve(env_or_factory, **EnvServer_kwargs)``; ``server.address``.
    """
    servers: list[EnvServer] = []

    def start(env: Any, address: str = "127.0.0.1:0", **kwargs: Any) -> EnvServer:
        server = EnvServer(env, address, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def spawn() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``rlmesh serve TARGET`` in a child process; stopped and reaped after the test."""
    procs: list[ServerProcess] = []

    def start(target: str, **kwargs: Any) -> ServerProcess:
        proc = spawn_server(target, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
