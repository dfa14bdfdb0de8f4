"""``EnvServer(..., workers=N)`` replaces a worker that dies or hangs (security review D14).

The workers share one port through ``SO_REUSEPORT``. A killed worker used to stay in
``worker_pids`` and was never replaced; a stopped (or hung) one kept its share of the new
connections, whose clients then timed out in the handshake.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from rlmesh import EnvServer, RLMeshError
from rlmesh.numpy import RemoteEnv
from tests.support.processes import alive, kill_stragglers, wait_for

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)"),
    pytest.mark.timeout(45),
]


@pytest.fixture
def pool_server(serve: Callable[..., EnvServer]) -> Iterator[EnvServer]:
    """A CartPole server of three processes on a free loopback port."""
    server = serve("CartPole-v1", workers=3)
    started = list(server.worker_pids)
    yield server
    for pid in started:  # a stopped worker would never get the SIGTERM of shutdown
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)
    kill_stragglers(started)




def unserved_clients(address: str, count: int) -> list[str]:
    """Open ``count`` sessions one after another; the failures, as text."""
    failures = []
    for _ in range(count):
        try:
            with RemoteEnv(address, connect_timeout=3, timeout=3) as env:
                env.reset(seed=0)
        except (RLMeshError, OSError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
    return failures


def test_a_killed_worker_is_replaced(pool_server: EnvServer) -> None:
    victim = pool_server.worker_pids[0]
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: victim not in pool_server.worker_pids
                        and len(pool_server.worker_pids) == 2, within=10)
    assert replaced, f"worker_pids is {pool_server.worker_pids} after killing {victim}"
    assert all(alive(pid) for pid in pool_server.worker_pids)
    assert unserved_clients(pool_server.address, 12) == []


def test_a_stopped_worker_loses_its_share_and_is_replaced(pool_server: EnvServer) -> None:
    victim = pool_server.worker_pids[0]
    os.kill(victim, signal.SIGSTOP)
    try:
        gone = wait_for(lambda: victim not in pool_server.worker_pids
                        and len(pool_server.worker_pids) == 2, within=8)
        failures = unserved_clients(pool_server.address, 15)
    finally:
        with contextlib.suppress(OSError):
            os.kill(victim, signal.SIGCONT)
    assert failures == [], f"{len(failures)} of 15 new clients not served: {failures[0]}"
    assert gone, f"worker_pids is {pool_server.worker_pids}; {victim} was stopped"
    assert not alive(victim)


def test_a_worker_told_to_stop_leaves_worker_pids(pool_server: EnvServer) -> None:
    victim = pool_server.worker_pids[0]
    os.kill(victim, signal.SIGTERM)  # stops gracefully, status 0: not replaced
    assert wait_for(lambda: pool_server.worker_pids == pool_server.worker_pids[-1:]
                    and victim not in pool_server.worker_pids, within=10)
    time.sleep(0.5)
    assert len(pool_server.worker_pids) == 1
    assert unserved_clients(pool_server.address, 6) == []
