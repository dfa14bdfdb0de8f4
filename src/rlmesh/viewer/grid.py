"""Where the terminal dashboard puts things: a grid of endpoint tiles over the run's numbers.

:func:`layout` is pure arithmetic on the terminal's size, so it is tested without a terminal.
Line 0 is the header; the tiles come next, as many per row as gives each endpoint's thumbnail
the most pixels (frames are wider than tall, ``aspect`` being width over height); the last
lines are the returns plot, the events and the summary. A terminal too small for thumbnails
gets one text line per tile, and a terminal too small even for that shows the first tiles and
counts the rest in :attr:`Layout.hidden`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BELOW", "GAP", "MIN_WIDTH", "TEXT_ROWS", "Box", "Layout", "layout"]

TEXT_ROWS = 2
"""Text lines of a full tile: the endpoint and status, then episode, step and return."""
MIN_WIDTH = 24
"""The narrowest full tile, in cells."""
GAP = 2
"""Cells between tiles side by side."""
BELOW = 9
"""Lines below the tiles, at most: the returns plot, the events, the summary."""


@dataclass(frozen=True)
class Box:
    """One tile's place on screen, in cells.

    Attributes:
        top: Its first line.
        left: Its first column.
        width: Its width.
        text_rows: Its lines of text (2, or 1 for a compact tile).
        thumb_rows: The lines below the text its thumbnail may fill (each two pixels tall).
    """

    top: int
    left: int
    width: int
    text_rows: int
    thumb_rows: int

    @property
    def height(self) -> int:
        """Lines it takes."""
        return self.text_rows + self.thumb_rows


@dataclass(frozen=True)
class Layout:
    """The whole screen: the tiles' boxes and the lines below them.

    Attributes:
        columns: The terminal's width.
        lines: The terminal's height.
        tiles: A box per shown tile, in tile order.
        hidden: Tiles that did not fit (the last ones).
        below_top: The first line below the tiles.
        below: How many lines are left there.
    """

    columns: int
    lines: int
    tiles: tuple[Box, ...]
    hidden: int
    below_top: int
    below: int


def _score(width: int, rows: int, aspect: float) -> float:
    """Pixels of an ``aspect`` image fitted into ``width`` cells by ``rows`` half-block lines."""
    if rows < 1 or width < 1:
        return 0.0
    scale = min(width / aspect, 2.0 * rows)
    return scale * scale * aspect


def _grid(count: int, columns: int, area: int, aspect: float) -> tuple[int, int, int] | None:
    """The best ``(per row, tile width, thumbnail rows)`` of full tiles, or ``None``."""
    best: tuple[float, int, int, int] | None = None
    for per_row in range(1, count + 1):
        width = (columns - (per_row - 1) * GAP) // per_row
        rows = math.ceil(count / per_row)
        height = (area + 1) // rows - 1  # a blank line between rows of tiles
        if width < MIN_WIDTH or height < TEXT_ROWS:
            continue
        thumb = height - TEXT_ROWS
        score = _score(width, thumb, aspect)
        if best is None or score > best[0]:
            best = (score, per_row, width, thumb)
    return None if best is None else best[1:]


def layout(count: int, columns: int, lines: int, aspect: float = 1.5) -> Layout:
    """Where ``count`` tiles and the run's numbers go on a ``columns`` x ``lines`` terminal.

    Args:
        count: The endpoints.
        columns: The terminal's width in cells.
        lines: The terminal's height in lines.
        aspect: The frames' width over their height.

    Returns:
        The boxes of the tiles shown and the room left below them; nothing lies outside the
        screen.
    """
    columns, lines = max(columns, 1), max(lines, 1)
    area = lines - 1
    below = BELOW if area >= 2 * BELOW else area // 2
    tile_area = area - below
    found = _grid(count, columns, tile_area, aspect) if count else None
    boxes: list[Box] = []
    if found is not None:
        per_row, width, thumb = found
        step = TEXT_ROWS + thumb + 1
        for k in range(count):
            row, col = divmod(k, per_row)
            boxes.append(Box(1 + row * step, col * (width + GAP), width, TEXT_ROWS, thumb))
        used = math.ceil(count / per_row) * step - 1
    else:  # compact: a line per tile, in as many columns as fit
        per_row = max(1, min(count, columns // MIN_WIDTH)) if count else 1
        width = (columns - (per_row - 1) * GAP) // per_row if per_row > 1 else columns
        rows = min(math.ceil(count / per_row), max(tile_area, area - 2))
        below = min(below, area - rows)  # the tiles before the numbers below them
        for k in range(min(count, rows * per_row)):
            row, col = divmod(k, per_row)
            boxes.append(Box(1 + row, col * (width + GAP), width, 1, 0))
        used = rows
    top = 1 + max(used, 0)
    return Layout(columns, lines, tuple(boxes), count - len(boxes), top,
                  max(lines - top, 0))
