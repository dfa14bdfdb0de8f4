"""The evaluation dashboard as lines of terminal text, drawn from a board snapshot.

:func:`draw_board` is pure: it takes :meth:`Board.state <rlmesh.viewer.board.Board.state>`,
a function that gives each tile's thumbnail (half-block lines, :mod:`rlmesh.viewer.blocks`)
and the terminal's size, and returns exactly one string per terminal line, none wider than
the terminal. The screen is laid out by :func:`rlmesh.viewer.grid.layout`: a header, a tile
per endpoint (address, status, episode, step, return, thumbnail), the returns plot
(:mod:`rlmesh.viewer.spark`), the newest events and, once the run ends, its summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rlmesh.viewer.blocks import cells_wide
from rlmesh.viewer.grid import Box, Layout, layout
from rlmesh.viewer.spark import plot_lines

__all__ = ["Thumbnail", "draw_board", "event_lines", "summary_line", "tile_lines"]

Thumbnail = Callable[[int, int, int], list[str]]
"""``thumbnail(slot, columns, rows)``: tile ``slot``'s latest frame in half blocks, or ``[]``."""

_COLOURS = {"playing": "32", "failed": "31", "done": "36", "waiting": "33", "idle": "37"}
_NOTABLE = {"endpoint_failed": "31", "endpoint_down": "31", "connect_failed": "31",
            "endpoint_mismatch": "31", "gave_up": "31", "incomplete": "31", "replay": "33",
            "endpoint_returned": "32"}


def _paint(text: str, sgr: str | None) -> str:
    return text if not sgr else f"\x1b[{sgr}m{text}\x1b[0m"


def _number(value: Any, form: str = ".4g") -> str:
    return "-" if value is None else format(float(value), form)


def tile_lines(tile: dict[str, Any], box: Box, thumbnail: Thumbnail) -> list[tuple[str, int]]:
    """A tile's lines as ``(text, cells wide)``: its text, then its thumbnail."""
    episode = "-" if tile["episode"] is None else str(tile["episode"])
    seed = "" if tile["seed"] is None else f" seed {tile['seed']}"
    numbers = (f"ep {episode}{seed}  step {tile['step']}  return {tile['return']:+.1f}  "
               f"done {tile['finished']}")
    status = str(tile["status"])
    if box.text_rows == 1:
        text = f"{tile['endpoint']} {status} {numbers}"[:box.width]
        return [(text, len(text))]
    name = str(tile["endpoint"])[:max(box.width - len(status) - 1, 1)]
    head = name + " " * max(box.width - len(name) - len(status), 1) + status
    head = head[:box.width]
    cut = head[:len(head) - len(status)] if head.endswith(status) else head
    out = [(cut + _paint(head[len(cut):], _COLOURS.get(status)), len(head)),
           (numbers[:box.width], len(numbers[:box.width]))]
    thumb = thumbnail(int(tile["slot"]), box.width, box.thumb_rows) if box.thumb_rows else []
    out.extend((line, cells_wide(line)) for line in thumb[:box.thumb_rows])
    return out


def event_lines(events: Sequence[dict[str, Any]], count: int, columns: int) -> list[str]:
    """The newest ``count`` events, one line each: failures and replays before returns."""
    if count <= 0:
        return []
    notable = [e for e in events if e.get("kind") != "episode"][-count:]
    room = count - len(notable)
    returns = [e for e in events if e.get("kind") == "episode"][-room:] if room > 0 else []
    chosen = sorted(notable + returns, key=lambda e: float(e.get("time") or 0.0))
    lines = []
    for event in chosen:
        kind = str(event.get("kind"))
        text = f"{kind:<17} {event.get('endpoint') or '':<21} {event.get('message') or ''}"
        lines.append(_paint(text[:columns], _NOTABLE.get(kind)))
    return lines


def summary_line(summary: dict[str, Any], columns: int) -> str:
    """The run's headline numbers in one line."""
    stats = summary.get("stats") or {}
    state = "interrupted" if summary.get("interrupted") else (
        "complete" if summary.get("complete") else "incomplete")
    rate = summary.get("success_rate")
    text = (f"summary: {summary.get('num_episodes')}/{summary.get('planned')} episodes "
            f"({state})  mean return {_number(stats.get('mean'))} ± "
            f"{_number(stats.get('ci95'))} (95%)  success "
            f"{'-' if rate is None else f'{100 * float(rate):.0f}%'}  mean steps "
            f"{_number(summary.get('mean_steps'), '.1f')}  wall "
            f"{_number(summary.get('wall_s'), '.1f')} s")
    return _paint(text[:columns], "1")


def _below(state: dict[str, Any], room: int, columns: int) -> list[str]:
    """The lines under the tiles: the plot, the events, the summary (in that order)."""
    plot = plot_lines(state["episodes"], state["band"], state["planned"], columns)[:room]
    summary = [summary_line(state["summary"], columns)] if state.get("summary") else []
    summary = summary[:max(room - len(plot), 0)]
    events = event_lines(state["events"], room - len(plot) - len(summary), columns)
    return plot + events + summary


def _header(state: dict[str, Any], grid: Layout, note: str) -> str:
    done = len(state["episodes"])
    more = f"  (+{grid.hidden} endpoints not shown)" if grid.hidden else ""
    text = f"rlmesh eval  {done}/{state['planned']} episodes{more}  {note}"
    return _paint(text[:grid.columns], "1")


def draw_board(state: dict[str, Any], thumbnail: Thumbnail, columns: int, lines: int,
               note: str = "", aspect: float = 1.5) -> list[str]:
    """The dashboard as ``lines`` strings, each at most ``columns`` cells wide.

    Args:
        state: A board snapshot (:meth:`Board.state <rlmesh.viewer.board.Board.state>`).
        thumbnail: Gives a tile's thumbnail lines.
        columns: The terminal's width.
        lines: The terminal's height.
        note: Shown in the header (the web page's address, the keys).
        aspect: The frames' width over their height (for the tiles' sizes).
    """
    grid = layout(len(state["tiles"]), columns, lines, aspect)
    rows: list[list[tuple[int, str, int]]] = [[] for _ in range(grid.lines)]
    rows[0].append((0, _header(state, grid, note), 0))
    for tile, box in zip(state["tiles"], grid.tiles, strict=False):
        for k, (text, wide) in enumerate(tile_lines(tile, box, thumbnail)):
            rows[box.top + k].append((box.left, text, wide))
    for k, text in enumerate(_below(state, grid.below, columns)):
        rows[grid.below_top + k].append((0, text, 0))
    out = []
    for row in rows:
        line, at = "", 0
        for left, text, wide in sorted(row, key=lambda part: part[0]):
            line += " " * max(left - at, 0) + text
            at = left + wide
        out.append(line)
    return out
