"""The poll-then-block policy: budgets, and long yields that are suspected before they count.

A receiver that polls yields the CPU between polls; a yield that takes longer than
``STOLEN_NS`` means another task had the CPU. On the same-host link (``suspect=True``) one
such yield is what an interrupt or the hypervisor does dozens of times a second, so it must
not make the next receives block (the peer would pay a wake-up each time); a second within
``SUSPECT_RECEIVES`` receives, which is what a peer sharing the CPU causes on every receive,
must. Over a socket the first one blocks.
"""

from __future__ import annotations

from rlmesh.transport.spin import ROUND_NS, SUSPECT_RECEIVES, SpinPolicy


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
    policy.blocked(9 * ROUND_NS)  # (longer than the full budget: stays short)
    assert policy.start() == 2 * ROUND_NS
    policy.blocked(3 * ROUND_NS)
    assert policy.start() == 8 * ROUND_NS
    assert SpinPolicy(0).start() == 0  # (never polls)


def test_a_socket_policy_blocks_at_the_first_long_yield() -> None:
    policy = SpinPolicy(10)
    policy.start()
    assert policy.stolen_yield() is True
    assert blocking_receives(policy, 2) == 2
    policy.start()
    assert policy.stolen_yield() is True
    assert blocking_receives(policy, 4) == 4  # (2**2: it recurred)
