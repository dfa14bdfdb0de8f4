"""``rlmesh.evaluate`` over a live endpoint set: servers killed and restarted at new addresses.

The endpoints are ``rlmesh serve`` child processes on 127.0.0.1 port 0 (or a unix socket in a
temporary folder). A hook picks a serving endpoint mid-run, a thread SIGKILLs it, starts a
replacement at a *new* address and updates the :class:`MutableEndpoints` the run reads.
Per-seed results are checked against a hand-written Gymnasium loop with the same seeds and
the same deterministic policy: nothing may depend on where or when an episode was played.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rlmesh
from rlmesh.testing import ServerProcess, spawn_server
from rlmesh.vector.endpoints import MutableEndpoints
from tests.support.episodes import Outcome, hand_loop
from tests.support.processes import kill_stragglers
from tests.support.slow_env import SLOW_MODULE, slow_env_environment

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

MAX_STEPS = 20


def angle_policy(observation: Any) -> int:
    return int(observation[2] > 0)


def expected(seeds: list[int]) -> list[Outcome]:
    return hand_loop(seeds, lambda observation, _: angle_policy(observation),
                     max_steps=MAX_STEPS)


def outcomes(result: rlmesh.RunResult) -> list[Outcome]:
    return [(e.steps, e.reward, e.terminated, e.truncated) for e in result.episodes]


@pytest.fixture
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start a slow-CartPole ``rlmesh serve`` child; every child is stopped after the test."""
    env = slow_env_environment(tmp_path_factory.mktemp("live-env"))
    children: list[ServerProcess] = []

    def spawn(address: str = "127.0.0.1:0") -> ServerProcess:
        child = spawn_server(f"{SLOW_MODULE}:SlowCartPole", address=address, env=env,
                             kwargs={"delay": 0.02})
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.stop()
    kill_stragglers([c.pid for c in children])


class Restarter(rlmesh.Hooks):
    """After ``after`` episodes ended, kill the endpoint that starts the next one; restart it.

    The replacement listens at a new address, which the live set then names for that slot.
    """

    def __init__(self, fleet: MutableEndpoints, servers: list[ServerProcess],
                 spawn: Callable[[], ServerProcess], after: int = 2) -> None:
        self.fleet, self.servers, self.spawn, self.after = fleet, servers, spawn, after
        self.ended = 0
        self.target: tuple[int, int] | None = None  # (slot, episode index)
        self.chosen = threading.Event()
        self.restarted: ServerProcess | None = None
        self.thread = threading.Thread(target=self._restart, daemon=True)
        self.thread.start()

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        addresses = self.fleet.addresses
        if self.ended >= self.after and self.target is None and endpoint in addresses:
            self.target = (addresses.index(endpoint), index)
            self.chosen.set()

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.ended += 1

    def _restart(self) -> None:
        if not self.chosen.wait(30) or self.target is None:
            return
        slot = self.target[0]
        old = self.servers[slot]
        os.kill(old.pid, signal.SIGKILL)
        old.process.wait(5)
        self.fleet.set(slot, None)  # (what a supervisor knows at once: the slot is down)
        self.restarted = self.spawn()
        self.fleet.set(slot, self.restarted.address)


def test_a_killed_endpoint_is_replayed_elsewhere_and_returned_to(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    fleet = MutableEndpoints([s.address for s in servers])
    seeds = list(range(500, 524))
    hook = Restarter(fleet, servers, start)
    result = rlmesh.evaluate(angle_policy, fleet, seeds=seeds, hooks=hook,
                             max_episode_steps=MAX_STEPS)
    hook.thread.join(30)
    assert hook.target is not None and hook.restarted is not None
    slot, lost = hook.target
    killed, new = servers[slot].address, hook.restarted.address
    assert new != killed and servers[slot].process.returncode == -signal.SIGKILL
    # Every planned episode exactly once, each as a local run with its seed plays it.
    assert [e.index for e in result.episodes] == list(range(len(seeds)))
    assert outcomes(result) == expected(seeds)
    assert result.complete and not result.interrupted
    kinds = [e["kind"] for e in result.events]
    failed = [e for e in result.events if e["kind"] == "endpoint_failed"]
    assert [(e["endpoint"], e["episode"]) for e in failed] == [(killed, lost)]
    assert result.episodes[lost].attempts == 2
    assert all(e.attempts == 1 for e in result.episodes if e.index != lost)
    # The slot was returned to at its new address: it played episodes after the restart.
    assert "endpoint_returned" in kinds and "endpoint_down" not in kinds
    assert [e["endpoint"] for e in result.events if e["kind"] == "endpoint_returned"] == [new]
    assert len(result.by_endpoint().get(new, [])) >= 1


def test_the_only_endpoint_restarted_on_a_unix_socket(
        start: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """With one slot, every episode after the kill waits for the replacement and plays there."""
    first = start(f"unix://{tmp_path / 'first.sock'}")
    fleet = MutableEndpoints([first.address])

    def respawn() -> ServerProcess:
        return start(f"unix://{tmp_path / 'second.sock'}")

    seeds = list(range(40, 46))
    hook = Restarter(fleet, [first], respawn, after=1)
    result = rlmesh.evaluate(angle_policy, fleet, seeds=seeds, hooks=hook,
                             max_episode_steps=MAX_STEPS)
    hook.thread.join(30)
    assert hook.target is not None and hook.restarted is not None
    _, lost = hook.target
    assert [e.index for e in result.episodes] == list(range(len(seeds)))
    assert outcomes(result) == expected(seeds)
    assert result.episodes[lost].attempts == 2
    later = [e.index for e in result.by_endpoint()[hook.restarted.address]]
    assert later == list(range(lost, len(seeds)))


def test_a_slot_that_never_returns_does_not_hang_the_run(
        start: Callable[..., ServerProcess]) -> None:
    servers = [start(), start()]
    fleet = MutableEndpoints([s.address for s in servers])
    seeds = list(range(700, 708))

    class KillOnly(Restarter):
        def _restart(self) -> None:
            if self.chosen.wait(30) and self.target is not None:
                os.kill(self.servers[self.target[0]].pid, signal.SIGKILL)
                self.fleet.set(self.target[0], None)

    hook = KillOnly(fleet, servers, start)
    result = rlmesh.evaluate(angle_policy, fleet, seeds=seeds, hooks=hook,
                             max_episode_steps=MAX_STEPS, reconnect_timeout=None)
    hook.thread.join(5)
    assert hook.target is not None
    killed = servers[hook.target[0]].address
    assert result.complete and outcomes(result) == expected(seeds)
    assert set(result.by_endpoint()) <= {s.address for s in servers}
    down = [e for e in result.events if e["kind"] == "endpoint_down"]
    assert [e["endpoint"] for e in down] == [killed]


def test_no_endpoint_serving_for_reconnect_timeout_ends_the_run(
        start: Callable[..., ServerProcess]) -> None:
    only = start()
    fleet = MutableEndpoints([only.address])

    class KillOnly(Restarter):
        def _restart(self) -> None:
            if self.chosen.wait(30) and self.target is not None:
                os.kill(self.servers[0].pid, signal.SIGKILL)

    seeds = list(range(10))
    hook = KillOnly(fleet, [only], start, after=1)
    result = rlmesh.evaluate(angle_policy, fleet, seeds=seeds, hooks=hook,
                             max_episode_steps=MAX_STEPS, reconnect_timeout=0.5)
    hook.thread.join(5)
    assert hook.target is not None
    finished = [e.index for e in result.episodes]
    assert not result.complete and finished == list(range(len(finished)))
    assert outcomes(result) == expected(seeds)[:len(finished)]
    kinds = [e["kind"] for e in result.events]
    assert kinds[-2:] == ["endpoint_down", "incomplete"]
