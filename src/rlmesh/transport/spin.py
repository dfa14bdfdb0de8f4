"""Poll, then block: one adaptive policy for how long a receiver polls before it sleeps.

A reply that arrives within a few tens of microseconds is picked up by polling (the socket
with non-blocking reads, or a shared-memory sequence word) without the sleep and wake-up of a
blocking receive. Polling adapts, the same way on both paths:

* a poll phase that found nothing halves the next one's budget (a slow peer costs little);
* a receive that blocked and ended within the full budget of its start restores it (the
  peer answers fast);
* one that ended later, but within ``REACH`` full budgets, sets the next budget a quarter
  past its wait: a peer whose step takes a little longer than the budget (a vector
  env of a few hundred microseconds, any env on a slow host) is caught by polling instead of
  paying a wake-up on every receive, which costs tens of microseconds on a virtual machine;
* a yield that handed the CPU to another task (perhaps the peer) means polling only slows
  the peer down: the next ``2**n`` receives block at once, ``n`` growing while it recurs.

Where blocking costs the peer a wake-up of its own (the same-host link: a sleeping receiver
needs a byte on the socket), one long yield proves too little: an interrupt or the
hypervisor takes a vCPU for more than ``STOLEN_NS`` dozens of times a second on a quiet
virtual machine (measured: about 35 per second). Such a policy (``suspect=True``) only
*suspects* a first long yield; a second one within the next ``SUSPECT_RECEIVES`` receives
(as when the peer shares this CPU: then every receive sees one) makes the receives block.
Over a socket, where the peer's data itself wakes a blocked receiver, the first long yield
blocks: polling a shared CPU with system calls costs more there.

A long yield counts early in a poll (within ``EARLY_NS`` of its start), or later if what the
poll waits for came during it. A peer that shares this CPU takes it at the first yields, as
soon as the receive starts polling; where the scheduler lets the poller run on first (some
kernels let a yielding task keep the CPU until its fair share is spent), the peer's step
still ends in that long yield, and its answer is there after it. Any other long yield late
in a long poll is an interruption: on a busy virtual machine they come hundreds of times a
second, so a poll of a few hundred microseconds would often see one.
"""

from __future__ import annotations

import os
import time
from typing import Final

__all__ = ["EARLY_NS", "REACH", "ROUND_NS", "STOLEN_NS", "SUSPECT_RECEIVES", "SpinPolicy",
           "now_ns", "yield_cpu"]

ROUND_NS: Final = 2_000
"""Budget of one configured round (about one non-blocking socket poll)."""
STOLEN_NS: Final = 25_000
"""A yield that took longer than this gave the CPU to another task."""
EARLY_NS: Final = 10_000
"""A long yield counts if the poll had run for at most this long before it (or if what the
poll waits for came during it)."""
REACH: Final = 4
"""A peer that answered within this many full budgets is polled for about as long next time."""
SUSPECT_RECEIVES: Final = 8
"""A second long yield within this many receives of the first means the CPU is shared."""
_MAX_STOLEN: Final = 6
"""At most ``2**6`` receives block at once after stolen yields."""

now_ns = time.perf_counter_ns
yield_cpu = getattr(os, "sched_yield", lambda: None)


class SpinPolicy:
    """How long the next receive may poll before it blocks.

    Args:
        rounds: The full budget, in rounds of about 2 µs (0: never poll).
        suspect: Whether a first long yield is only suspected (see the module).
    """

    __slots__ = ("budget_ns", "confirm", "cooldown", "full_ns", "rounds", "stolen", "suspect")

    def __init__(self, rounds: int = 0, suspect: bool = False) -> None:
        self.confirm = SUSPECT_RECEIVES + 1 if suspect else 0
        """Receives a suspicion lasts (0: a first long yield blocks)."""
        self.rounds = 0
        self.full_ns = 0
        self.budget_ns = 0
        self.cooldown = 0
        self.stolen = 0
        self.suspect = 0
        """Receives left in which a long yield confirms the one suspected before."""
        self.set(rounds)

    def set(self, rounds: int) -> None:
        """Start over with a full budget of ``rounds`` rounds."""
        self.rounds = max(int(rounds), 0)
        self.full_ns = self.budget_ns = self.rounds * ROUND_NS
        self.cooldown = self.stolen = self.suspect = 0

    def start(self) -> int:
        """Nanoseconds the receive now starting may poll (0: block at once)."""
        if self.suspect:
            self.suspect -= 1
        if self.cooldown:
            self.cooldown -= 1
            return 0
        return self.budget_ns

    def hit(self) -> None:
        """Polling caught the data."""
        self.stolen = 0

    def missed(self) -> None:
        """Nothing came within the budget: poll half as long next time."""
        self.budget_ns >>= 1

    def stolen_yield(self) -> bool:
        """A yield took longer than ``STOLEN_NS``: another task had the CPU.

        Returns:
            Whether to stop polling (the next ``2**n`` receives then block at once). A
            policy that suspects first says so at the second long yield within
            ``SUSPECT_RECEIVES`` receives; until then polling goes on.
        """
        if not self.suspect and self.confirm:
            self.suspect = self.confirm  # (start() counts this receive too)
            return False
        self.suspect = 0
        self.stolen = min(self.stolen + 1, _MAX_STOLEN)
        self.cooldown = 1 << self.stolen
        return True

    def blocked(self, waited_ns: int) -> None:
        """A receive that blocked ended ``waited_ns`` after it started.

        One within the full budget restores it; one within ``REACH`` full budgets sets the
        next budget a quarter past it (at most ``REACH`` full budgets); a longer one leaves
        the budget as it is, so a peer that keeps answering late stops being polled.
        """
        full = self.full_ns
        if not full or self.cooldown or waited_ns > full * REACH:
            return
        self.budget_ns = full if waited_ns <= full else min(waited_ns + (waited_ns >> 2),
                                                            full * REACH)
