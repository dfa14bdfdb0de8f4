"""Holding Ctrl+C while a command writes what it owes the user.

A finished ``rlmesh eval`` saves its JSON, draws its plot and prints its summary before it
lingers on the dashboard. A Ctrl+C in that moment (the page already shows the summary, so
the user takes the run for done) must not cut the report short: :func:`held_interrupts`
lets the block finish and tells afterwards whether Ctrl+C came meanwhile.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["held_interrupts"]


@contextlib.contextmanager
def held_interrupts() -> Iterator[list[int]]:
    """Run the block to its end even if SIGINT comes; yields the signals held (empty: none).

    Only the main thread can take over SIGINT: elsewhere the block runs as it would
    without this (a Ctrl+C raises ``KeyboardInterrupt`` in the main thread as usual).
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)
