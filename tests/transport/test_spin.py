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


# -- the poll loops: a long yield counts early in a poll, or if the answer came in it --------


class FakeClock:
    """A clock that only moves while the poll loop yields: by each of ``yields`` in turn.

    ``then(n)`` runs after the ``n``-th yield (counted from 0), as the peer would meanwhile.
    """

    def __init__(self, yields: list[int], then: Callable[[int], None]) -> None:
        self.now = 1_000_000
        self.yields: Iterator[int] = iter(yields)
        self.count = 0
        self.then = then

    def now_ns(self) -> int:
        return self.now

    def yield_cpu(self) -> None:
        self.now += next(self.yields, ROUND_NS)
        self.then(self.count)
        self.count += 1


def use_clock(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType,
              clock: FakeClock) -> None:
    """Make ``module``'s poll loop read ``clock`` and yield through it."""
    monkeypatch.setattr(module, "now_ns", clock.now_ns)
    monkeypatch.setattr(module, "yield_cpu", clock.yield_cpu)


class RecordingPolicy(SpinPolicy):
    """A policy that records the long yields and blocked waits it is told of."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds)
        self.told = 0
        self.waits: list[int] = []

    def stolen_yield(self) -> bool:
        self.told += 1
        return super().stolen_yield()

    def blocked(self, waited_ns: int) -> None:
        self.waits.append(waited_ns)
        super().blocked(waited_ns)


Poll = Callable[[pytest.MonkeyPatch, list[int], SpinPolicy, "int | None"], object]
"""Run one Python poll loop with a fake clock whose yields take the given times; the answer
comes during the yield of the given index (``None``: never)."""
LONG = STOLEN_NS + 5_000
SHORT = [ROUND_NS] * (EARLY_NS // ROUND_NS)
"""Short yields up to exactly ``EARLY_NS`` into the poll."""
LATE = [*SHORT, ROUND_NS, LONG]
"""Short yields past ``EARLY_NS`` into the poll, then a long one."""


def poll_link(monkeypatch: pytest.MonkeyPatch, yields: list[int], policy: SpinPolicy,
              comes: int | None = None) -> bool:
    """Run the link's Python poll over a sequence word that moves (to 1) at ``comes``."""
    link = types.SimpleNamespace(_ctl=[0], _in_word=0, _policy=policy)

    def then(count: int) -> None:
        if count == comes:
            link._ctl[0] = 1

    use_clock(monkeypatch, shmlink, FakeClock(yields, then))
    return shmlink.ShmLink._spin(link, 1, 100 * ROUND_NS)  # type: ignore[arg-type]


def poll_socket(monkeypatch: pytest.MonkeyPatch, yields: list[int], policy: SpinPolicy,
                comes: int | None = None) -> int:
    """Run the socket's Python poll; the peer sends its 8 bytes at ``comes``."""
    mine, peer = socket.socketpair()

    def then(count: int) -> None:
        if count == comes:
            peer.sendall(b"answered")

    use_clock(monkeypatch, stream, FakeClock(yields, then))
    with mine, peer:
        conn = stream.Connection(mine, 1 << 20)
        conn._policy = policy
        return conn._poll(0, 8, 100 * ROUND_NS)


POLLS = pytest.mark.parametrize("poll", [poll_link, poll_socket], ids=["link", "socket"])


@POLLS
def test_a_long_yield_late_in_a_poll_is_an_interruption(
        monkeypatch: pytest.MonkeyPatch, poll: Poll) -> None:
    policy = RecordingPolicy(100)
    assert not poll(monkeypatch, LATE, policy, None)
    assert policy.told == 0 and policy.start() == 50 * ROUND_NS  # (polled on, and missed)


@POLLS
@pytest.mark.parametrize("before", [[ROUND_NS], SHORT], ids=["first", "at the edge"])
def test_a_long_yield_early_in_a_poll_counts(monkeypatch: pytest.MonkeyPatch, poll: Poll,
                                             before: list[int]) -> None:
    policy = RecordingPolicy(100)  # (a socket's policy: the first long yield blocks)
    assert not poll(monkeypatch, [*before, LONG], policy, None)
    assert policy.told == 1
    assert blocking_receives(policy, 2) == 2


@POLLS
def test_a_long_yield_late_in_a_poll_counts_if_the_answer_came_in_it(
        monkeypatch: pytest.MonkeyPatch, poll: Poll) -> None:
    """The peer shares this CPU, but the scheduler let this poll run on first."""
    policy = RecordingPolicy(100)
    poll(monkeypatch, LATE, policy, len(LATE) - 1)
    assert policy.told == 1
    assert blocking_receives(policy, 2) == 2


def test_a_socket_receive_tells_the_policy_its_wait_from_its_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A receive whose poll missed blocks; the policy learns how long the peer took."""
    mine, peer = socket.socketpair()
    policy = RecordingPolicy(2)  # (4 µs: a poll of three short yields misses)

    def then(count: int) -> None:
        if count == 2:
            peer.sendall(b"answered")  # (after the poll's last look: the blocking read gets it)

    use_clock(monkeypatch, stream, FakeClock([ROUND_NS] * 3, then))
    with mine, peer:
        conn = stream.Connection(mine, 1 << 20)
        conn.set_spin(2)
        conn._policy = policy
        conn._fill(8)
    assert policy.waits == [3 * ROUND_NS]  # (the poll's time too, not only the blocked read)
