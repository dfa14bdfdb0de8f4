"""Returns as text: sparklines of the returns by seed and of their running mean.

The terminal dashboard's plot is two lines of eighth-height bars (U+2581 to U+2588) on one
scale: every finished episode's return in seed order, and the running mean over the seeds so
far (:func:`rlmesh.viewer.stats.running_band`), followed by the mean's 95% band in numbers.
More episodes than cells are averaged into buckets of consecutive seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["BARS", "bucket", "plot_lines", "sparkline"]

BARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
"""The eight bar heights, lowest first."""
_LABEL = 16
"""Cells taken by each line's label."""


def bucket(values: Sequence[float], width: int) -> list[float]:
    """``values`` as at most ``width`` numbers: consecutive ones averaged together."""
    if width < 1:
        return []
    if len(values) <= width:
        return [float(v) for v in values]
    out = []
    for k in range(width):
        part = values[k * len(values) // width:(k + 1) * len(values) // width]
        out.append(math.fsum(part) / len(part))
    return out


def sparkline(values: Sequence[float], low: float, high: float) -> str:
    """One bar per value, its height where the value sits between ``low`` and ``high``."""
    span = high - low
    top = len(BARS) - 1
    bars = []
    for value in values:
        level = top // 2 if span <= 0 or not math.isfinite(value) else \
            round((value - low) / span * top)
        bars.append(BARS[min(max(level, 0), top)])
    return "".join(bars)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def plot_lines(episodes: Sequence[dict[str, Any]], band: Sequence[dict[str, float]],
               planned: int, columns: int) -> list[str]:
    """The two plot lines, each at most ``columns`` cells.

    Args:
        episodes: The finished episodes (``seed``, ``index``, ``reward``), in any order.
        band: Their running mean and band in seed order (``running_band``).
        planned: Episodes the run plans (for the count shown).
        columns: The width available.
    """
    ordered = [float(point["mean"]) for point in band]
    returns = [float(e.get("reward") or 0.0) for e in sorted(
        episodes, key=lambda e: (e.get("seed") is None, e.get("seed") or 0, e.get("index")))]
    head = f"returns {len(returns)}/{planned}".ljust(_LABEL)
    last = band[-1] if band else None
    tail = "" if last is None else (f"  mean {_number(last['mean'])}  95% "
                                    f"[{_number(last['lo'])}, {_number(last['hi'])}]")
    width = max(columns - _LABEL - len(tail), 0)
    values = returns + ordered
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    first = head + sparkline(bucket(returns, width), low, high)
    second = "running mean".ljust(_LABEL) + sparkline(bucket(ordered, width), low, high) + tail
    return [first[:columns], second[:columns]]
