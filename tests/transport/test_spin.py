"""The poll-then-block policy: budgets, and long yields that are suspected before they count.

A receiver that polls yields the CPU between polls; a yield that takes longer than
``STOLEN_NS`` means another task had the CPU. On the same-host link (``suspect=True``) one
such yield is what an interrupt or the hypervisor does dozens of times a second, so it must
not make the next receives block (the peer would pay a wake-up each time); a second within
``SUSPECT_RECEIVES`` receives, which is what a peer sharing the CPU causes on every receive,
must. Over a socket the first one blocks.
"""

from __future__ import annotations

import importlib
import socket
import types
from collections.abc import Callable, Iterator

import pytest

from rlmesh.transport import fastframes, fastslots, shmlink, spin, stream
from rlmesh.transport.spin import EARLY_NS, REACH, ROUND_NS, STOLEN_NS, SUSPECT_RECEIVES, SpinPolicy
from tests.support.fastslots import require_compiled


def blocking_receives(policy: SpinPolicy, receives: int) -> int:
    """How many of the next ``receives`` receives would block at once."""
    return sum(policy.start() == 0 for _ in range(receives))


def test_one_long_yield_is_only_suspected() -> None:
    policy = SpinPolicy(10, suspect=True)
    assert policy.start() == 10 * ROUND_NS
    assert policy.stolen_yield() is False  # (polling goes on)
    assert blocking_receives(policy, 50) == 0


def test_a_second_long_yield_soon_after_makes_receives_block() -> None:
    policy = SpinPolicy(10, suspect=True)
    policy.start()
    assert policy.stolen_yield() is False
    for _ in range(SUSPECT_RECEIVES - 1):
        policy.start()
    policy.start()  # (the receive that sees the second one)
    assert policy.stolen_yield() is True
    assert blocking_receives(policy, 2) == 2  # 2**1 receives block
    assert policy.start() == 10 * ROUND_NS


def test_a_second_long_yield_long_after_is_suspected_again() -> None:
    policy = SpinPolicy(10, suspect=True)
    policy.start()
    assert policy.stolen_yield() is False
    for _ in range(SUSPECT_RECEIVES + 1):
        policy.start()
    assert policy.stolen_yield() is False
    assert blocking_receives(policy, 20) == 0


def test_a_shared_cpu_blocks_for_longer_while_it_recurs() -> None:
    """A peer on this CPU: every receive sees a long yield; the cooldowns grow 2, 4, 8..."""
    policy = SpinPolicy(10, suspect=True)
    blocked: list[int] = []
    for _ in range(4):
        assert policy.start() != 0
        assert policy.stolen_yield() is False  # (suspected)
        assert policy.start() != 0
        assert policy.stolen_yield() is True  # (confirmed)
        count = 0
        while policy.start() == 0:
            count += 1
        blocked.append(count)
    assert blocked == [2, 4, 8, 16]


def test_a_hit_resets_the_growth_and_set_forgets_the_suspicion() -> None:
    policy = SpinPolicy(10, suspect=True)
    for _ in range(3):
        policy.start()
        policy.stolen_yield()
    assert policy.stolen == 1
    policy.hit()
    assert policy.stolen == 0
    policy.start()
    policy.stolen_yield()  # (suspected)
    policy.set(10)
    policy.start()
    assert policy.stolen_yield() is False  # (a fresh policy suspects first)


def test_budgets_halve_on_a_miss_and_come_back_after_a_short_block() -> None:
    policy = SpinPolicy(8)
    policy.missed()
    policy.missed()
    assert policy.start() == 2 * ROUND_NS
    policy.blocked(REACH * 8 * ROUND_NS + 1)  # (beyond reach: stays short)
    assert policy.start() == 2 * ROUND_NS
    policy.blocked(3 * ROUND_NS)
    assert policy.start() == 8 * ROUND_NS
    assert SpinPolicy(0).start() == 0  # (never polls)
    policy = SpinPolicy(0)
    policy.blocked(ROUND_NS)
    assert policy.start() == 0  # (nor learns to)


def test_a_peer_a_little_slower_than_the_budget_is_polled_past_its_last_answer() -> None:
    """Within REACH full budgets, the next poll lasts a quarter past the last wait."""
    policy = SpinPolicy(8)
    full = 8 * ROUND_NS
    policy.missed()
    policy.blocked(2 * full)
    assert policy.start() == 2 * full + full // 2
    policy.blocked(full + 4)  # (the peer got faster: a quarter past that)
    assert policy.start() == (full + 4) * 5 // 4
    policy.blocked(REACH * full)  # (at the edge: capped at REACH full budgets)
    assert policy.start() == REACH * full
    policy.missed()  # (the peer slowed down past reach: halves, and is not brought back)
    policy.blocked(REACH * full + 1)
    assert policy.start() == REACH * full // 2
    policy.missed()
    policy.blocked(10 * REACH * full)
    assert policy.start() == REACH * full // 4


def test_a_policy_cooling_down_after_stolen_yields_does_not_learn() -> None:
    policy = SpinPolicy(8)
    policy.start()
    assert policy.stolen_yield() is True  # (2 receives now block at once)
    policy.missed()
    assert policy.start() == 0
    policy.blocked(2 * 8 * ROUND_NS)
    assert policy.start() == 0
    assert policy.start() == 4 * ROUND_NS  # (as the miss left it)


def test_a_socket_policy_blocks_at_the_first_long_yield() -> None:
    policy = SpinPolicy(10)
    policy.start()
    assert policy.stolen_yield() is True
    assert blocking_receives(policy, 2) == 2
    policy.start()
    assert policy.stolen_yield() is True
    assert blocking_receives(policy, 4) == 4  # (2**2: it recurred)


@pytest.mark.parametrize("face", [fastframes, fastslots], ids=["fastframes", "fastslots"])
def test_the_compiled_polls_use_the_policy_s_constants(face: types.ModuleType) -> None:
    require_compiled(face)
    module = importlib.import_module(f"rlmesh.transport._{face.__name__.rsplit('.', 1)[-1]}")
    for name in ("STOLEN_NS", "EARLY_NS"):
        assert getattr(module, name) == getattr(spin, name), name


# -- the poll loops: only a long yield early in a poll counts ----------------------------------


class FakeClock:
    """A clock that only moves while the poll loop yields: by each of ``yields`` in turn."""

    def __init__(self, yields: list[int]) -> None:
        self.now = 1_000_000
        self.yields: Iterator[int] = iter(yields)

    def now_ns(self) -> int:
        return self.now

    def yield_cpu(self) -> None:
        self.now += next(self.yields, ROUND_NS)


class RecordingPolicy(SpinPolicy):
    """A policy that records every long yield it is told of (and still decides)."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds)
        self.told = 0

    def stolen_yield(self) -> bool:
        self.told += 1
        return super().stolen_yield()


Poll = Callable[[pytest.MonkeyPatch, list[int], SpinPolicy], object]
"""Run one Python poll loop with a fake clock whose yields take the given times."""
LONG = STOLEN_NS + 5_000
LATE = [ROUND_NS] * (EARLY_NS // ROUND_NS + 1) + [LONG]
"""Short yields past ``EARLY_NS`` into the poll, then a long one (an interruption)."""


def poll_link(monkeypatch: pytest.MonkeyPatch, yields: list[int],
              policy: SpinPolicy) -> bool:
    """Run the link's Python poll over a sequence word that never moves."""
    clock = FakeClock(yields)
    monkeypatch.setattr(shmlink, "now_ns", clock.now_ns)
    monkeypatch.setattr(shmlink, "yield_cpu", clock.yield_cpu)
    link = types.SimpleNamespace(_ctl=[0], _in_word=0, _policy=policy)
    return shmlink.ShmLink._spin(link, 1, 100 * ROUND_NS)  # type: ignore[arg-type]


def poll_socket(monkeypatch: pytest.MonkeyPatch, yields: list[int],
                policy: SpinPolicy) -> int:
    """Run the socket's Python poll on a connection whose peer sends nothing."""
    clock = FakeClock(yields)
    monkeypatch.setattr(stream, "now_ns", clock.now_ns)
    monkeypatch.setattr(stream, "yield_cpu", clock.yield_cpu)
    mine, peer = socket.socketpair()
    with mine, peer:
        conn = stream.Connection(mine, 1 << 20)
        conn._policy = policy
        return conn._poll(0, 8, 100 * ROUND_NS)


@pytest.mark.parametrize("poll", [poll_link, poll_socket], ids=["link", "socket"])
def test_a_long_yield_late_in_a_poll_is_an_interruption(
        monkeypatch: pytest.MonkeyPatch, poll: Poll) -> None:
    policy = RecordingPolicy(100)
    assert not poll(monkeypatch, LATE, policy)
    assert policy.told == 0 and policy.start() == 50 * ROUND_NS  # (polled on, and missed)


@pytest.mark.parametrize("poll", [poll_link, poll_socket], ids=["link", "socket"])
def test_a_long_yield_early_in_a_poll_counts(monkeypatch: pytest.MonkeyPatch,
                                             poll: Poll) -> None:
    policy = RecordingPolicy(100)  # (a socket's policy: the first long yield blocks)
    assert not poll(monkeypatch, [ROUND_NS, LONG], policy)
    assert policy.told == 1
    assert blocking_receives(policy, 2) == 2
