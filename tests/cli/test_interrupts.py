"""Ctrl+C while ``rlmesh eval`` writes its report: the report is whole, the lingering ends.

Real signals, sent to this process (pytest runs tests in the main thread).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import rlmesh.evaluation.progress
from rlmesh.cli import commands
from rlmesh.cli.interrupts import held_interrupts
from rlmesh.evaluation.results import EpisodeResult, RunResult


def test_a_ctrl_c_inside_the_block_waits_for_its_end() -> None:
    finished = False
    with held_interrupts() as held:
        os.kill(os.getpid(), signal.SIGINT)
        finished = True  # (still running: the signal was held)
    assert finished and held == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # the usual Ctrl+C again after the block
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # (a moment for the handler to run)


def test_nothing_is_held_without_a_ctrl_c() -> None:
    with held_interrupts() as held:
        pass
    assert held == []


def test_outside_the_main_thread_nothing_changes() -> None:
    seen: list[Any] = []

    def other() -> None:
        with held_interrupts() as held:
            seen.append((signal.getsignal(signal.SIGINT), list(held)))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert seen == [(signal.default_int_handler, [])]


class Watch:
    """Records lingering (a web dashboard: no terminal)."""

    terminal = None
    url = "http://127.0.0.1:1/"

    def __init__(self) -> None:
        self.lingered: list[float] = []

    def linger(self, seconds: float) -> None:
        self.lingered.append(seconds)


def finished_run() -> RunResult:
    episodes = [EpisodeResult(index=i, seed=i, steps=10 + i, reward=float(i), terminated=True,
                              truncated=False, endpoint="a") for i in range(3)]
    return RunResult(episodes=episodes, planned=3)


@pytest.mark.parametrize("ctrl_c", [False, True])
def test_ctrl_c_while_the_report_is_written_ends_the_lingering_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        ctrl_c: bool) -> None:
    print_summary = rlmesh.evaluation.progress.print_summary

    def slow_summary(result: RunResult) -> None:
        if ctrl_c:  # the user presses Ctrl+C in the middle of the report
            os.kill(os.getpid(), signal.SIGINT)
        print_summary(result)

    monkeypatch.setattr(rlmesh.evaluation.progress, "print_summary", slow_summary)
    path = tmp_path / "run.json"
    args = argparse.Namespace(json=str(path), plot=None, policy=None, view_linger=30.0)
    watch = Watch()
    commands._finish(args, finished_run(), watch)  # type: ignore[arg-type]
    assert RunResult.load(path).episodes[2].steps == 12  # written whole
    assert "3/3 episodes" in capsys.readouterr().out  # the summary printed
    assert watch.lingered == ([] if ctrl_c else [30.0])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
