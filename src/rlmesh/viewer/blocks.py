"""Images as coloured half-block characters, and the escapes of a full-screen terminal view.

Each character cell shows two pixels: the upper half block (U+2580) in the top pixel's 24-bit
foreground colour over the bottom pixel's background colour. :func:`halfblocks` scales a frame
(nearest pixel, aspect kept) into a box of cells; the run viewer draws one frame as large as
the terminal, the evaluation dashboard a thumbnail per endpoint, both with this one function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ENTER", "LEAVE", "UPPER", "cells_wide", "fit", "halfblocks"]

UPPER = "\u2580"
"""The upper half block: one cell, two pixels."""
ENTER = "\x1b[?1049h\x1b[?25l\x1b[2J"
"""Switch to the alternate screen, hide the cursor, clear."""
LEAVE = "\x1b[0m\x1b[?25h\x1b[?1049l"
"""Reset the colours, show the cursor, go back to the normal screen."""


def fit(height: int, width: int, columns: int, rows: int) -> tuple[int, int]:
    """The size ``(pixel rows, columns)`` an image is scaled to: the largest that fits.

    Args:
        height: The image's height in pixels.
        width: The image's width in pixels.
        columns: The cells available across.
        rows: The cells available down (each two pixels tall).

    Returns:
        An even number of pixel rows (at least 2) and a number of columns (at least 1).
    """
    scale = min(columns / width, (2 * rows) / height)
    return max(2, int(height * scale) // 2 * 2), max(1, int(width * scale))


def halfblocks(frame: np.ndarray, columns: int, rows: int) -> list[str]:
    """``frame`` (``(H, W, 3)`` uint8) as lines of coloured half blocks within the given cells.

    Each line ends by resetting the colours; it is :func:`cells_wide` cells wide.
    """
    height, width = fit(frame.shape[0], frame.shape[1], columns, rows)
    ys = np.minimum(np.arange(height) * frame.shape[0] // height, frame.shape[0] - 1)
    xs = np.minimum(np.arange(width) * frame.shape[1] // width, frame.shape[1] - 1)
    small = frame[ys][:, xs]
    lines = []
    for top, bottom in zip(small[0::2], small[1::2], strict=True):
        cells = [f"\x1b[38;2;{a[0]};{a[1]};{a[2]}m\x1b[48;2;{b[0]};{b[1]};{b[2]}m{UPPER}"
                 for a, b in zip(top.tolist(), bottom.tolist(), strict=True)]
        lines.append("".join(cells) + "\x1b[0m")
    return lines


def cells_wide(line: str) -> int:
    """How many cells a line of :func:`halfblocks` takes on screen."""
    return line.count(UPPER)
