"""The terminal dashboard's layout and text, without a terminal: pure functions of a size."""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest

from rlmesh.viewer.blocks import halfblocks
from rlmesh.viewer.board import Board
from rlmesh.viewer.board_text import draw_board, event_lines
from rlmesh.viewer.grid import MIN_WIDTH, layout
from rlmesh.viewer.spark import BARS, bucket, sparkline

SGR = re.compile(r"\x1b\[[0-9;]*m")


def _cells(line: str) -> int:
    return len(SGR.sub("", line))


def _overlap(a: Any, b: Any) -> bool:
    return (a.left < b.left + b.width and b.left < a.left + a.width
            and a.top < b.top + b.height and b.top < a.top + a.height)


@pytest.mark.parametrize(("columns", "lines"), [(120, 40), (80, 24), (200, 60)])
@pytest.mark.parametrize("count", range(1, 9))
def test_tiles_fit_the_screen_without_overlapping(count: int, columns: int,
                                                  lines: int) -> None:
    grid = layout(count, columns, lines)
    assert grid.hidden == 0 and len(grid.tiles) == count
    for box in grid.tiles:
        assert box.left >= 0 and box.left + box.width <= columns
        assert box.top >= 1 and box.top + box.height <= grid.below_top <= lines
        assert box.width >= MIN_WIDTH and box.text_rows == 2
    assert not any(_overlap(a, b) for a, b in itertools.combinations(grid.tiles, 2))
    assert grid.below_top + grid.below == lines and grid.below >= 4
    if columns >= 120:
        assert all(box.thumb_rows >= 6 for box in grid.tiles)  # a thumbnail worth a look


def test_more_endpoints_give_smaller_tiles() -> None:
    areas = [layout(n, 120, 40).tiles[0] for n in (1, 4, 8)]
    pixels = [min(b.width / 1.5, 2 * b.thumb_rows) for b in areas]
    assert pixels[0] > pixels[1] > pixels[2] > 0


@pytest.mark.parametrize(("count", "columns", "lines"),
                         [(8, 40, 12), (8, 20, 5), (3, 10, 3), (1, 1, 1), (6, 60, 8)])
def test_small_terminals_get_text_tiles_and_count_the_rest(count: int, columns: int,
                                                           lines: int) -> None:
    grid = layout(count, columns, lines)
    assert len(grid.tiles) + grid.hidden == count
    for box in grid.tiles:
        assert box.thumb_rows == 0 and box.height == 1
        assert box.left + box.width <= columns and box.top < lines
    assert grid.below_top + grid.below <= lines
    assert not any(_overlap(a, b) for a, b in itertools.combinations(grid.tiles, 2))


def _board(count: int, episodes: int) -> Board:
    board = Board()
    board.begin([f"127.0.0.1:{5000 + k}" for k in range(count)], 50)
    for index in range(episodes):
        address = f"127.0.0.1:{5000 + index % count}"
        board.episode_start(index, 100 + index, address)
        board.step(index, 1, 1.0 + index % 7)
        board.episode_end({"index": index, "seed": 100 + index, "reward": 1.0 + index % 7,
                           "steps": 1, "endpoint": address})
    board.event({"kind": "endpoint_failed", "endpoint": "127.0.0.1:5001",
                 "message": "connection lost", "time": 0.0})
    return board


@pytest.mark.parametrize(("columns", "lines"), [(120, 40), (80, 24), (40, 12), (20, 5)])
def test_the_board_is_drawn_within_the_screen(columns: int, lines: int) -> None:
    board = _board(4, 20)
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :30] = (200, 10, 10)
    drawn = draw_board(board.state(), lambda slot, w, r: halfblocks(frame, w, r), columns,
                       lines, aspect=1.5)
    assert len(drawn) == lines
    assert all(_cells(line) <= columns for line in drawn)
    text = "\n".join(SGR.sub("", line) for line in drawn)
    assert text.startswith("rlmesh eval  20/50 episodes"[:columns])
    if lines >= 24:
        assert all(f"127.0.0.1:{5000 + k}" in text for k in range(4))
        assert "returns 20/50" in text and "running mean" in text
        assert "endpoint_failed" in text  # a failure outlives the newer returns
    if columns >= 80:
        assert sum("\u2580" in line for line in drawn) >= 8


def test_the_summary_shows_when_the_run_ends() -> None:
    board = _board(2, 10)
    board.end({"num_episodes": 10, "planned": 50, "interrupted": True, "complete": False,
               "mean_steps": 1.0, "success_rate": None, "wall_s": 2.5},
              [1.0 + i % 7 for i in range(10)])
    drawn = [SGR.sub("", line) for line in draw_board(board.state(), lambda *a: [], 120, 30)]
    summary = next(line for line in drawn if line.startswith("summary:"))
    assert "10/50 episodes (interrupted)" in summary and "wall 2.5 s" in summary


def test_sparklines_scale_and_bucket() -> None:
    assert sparkline([0.0, 0.5, 1.0], 0.0, 1.0) == BARS[0] + BARS[4] + BARS[7]
    assert sparkline([3.0, 3.0], 3.0, 3.0) == BARS[3] * 2  # no spread: the middle
    assert bucket([1.0, 3.0, 5.0, 7.0], 2) == [2.0, 6.0]
    assert bucket([1.0, 2.0], 5) == [1.0, 2.0] and bucket([1.0], 0) == []


def test_events_keep_failures_before_returns() -> None:
    events = [{"kind": "episode", "endpoint": "a", "message": f"e{k}", "time": float(k)}
              for k in range(10)]
    events.insert(2, {"kind": "replay", "endpoint": "b", "message": "again", "time": 1.5})
    shown = [SGR.sub("", line) for line in event_lines(events, 3, 80)]
    assert len(shown) == 3 and shown[0].startswith("replay")
    assert shown[1].endswith("e8") and shown[2].endswith("e9")
