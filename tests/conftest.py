"""Shared fixtures: real servers on 127.0.0.1 port 0, in threads or child processes."""

from __future__ import annotations

import contextlib
import os
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


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_in_the_test_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stable-Baselines3 logs under the test run's temporary tree, not in ``/tmp``.

    Every ``learn()`` without a logger of its own makes a new ``SB3-<date>`` folder in the
    system's temporary directory; ``SB3_LOGDIR`` (inherited by the children the tests start)
    names one under pytest's base temporary directory instead, which pytest prunes.
    """
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if previous is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = previous


@pytest.fixture
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., EnvServer]]:
    """Start an in-process EnvServer; shut down after the test.

    Usage: ``server = serve(env_or_factory, **EnvServer_kwargs)``; ``server.address``. It
    listens on a free loopback port, or, in a module marked ``pytest.mark.memory_peer``
    (tests that only need a peer, not a socket), at a fresh ``memory://`` address. An
    explicit ``address`` wins either way.
    """
    servers: list[EnvServer] = []
    in_memory = request.node.get_closest_marker("memory_peer") is not None

    def start(env: Any, address: str | None = None, **kwargs: Any) -> EnvServer:
        if address is None:
            address = (f"memory://{request.node.name}/{len(servers)}" if in_memory
                       else "127.0.0.1:0")
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


@pytest.fixture
def closing(serve: Callable[..., EnvServer], spawn: Callable[..., ServerProcess]
            ) -> Iterator[Callable[[Any], Any]]:
    """``keep(thing)`` registers a client or env to close after the test, newest first.

    Closed before the servers of ``serve`` and ``spawn`` stop (close errors are ignored).
    """
    things: list[Any] = []

    def keep(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield keep
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            thing.close()
