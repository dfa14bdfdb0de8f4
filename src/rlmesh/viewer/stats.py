"""The numbers the dashboard plots: a mean with its 95% confidence interval, as it grows.

The interval is the normal approximation, ``mean +- 1.96 * sd / sqrt(n)`` (``sd`` the sample
standard deviation), which is what a reader of the plot expects; with one episode it is the
point itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Z95", "running_band", "summary_stats"]

Z95 = 1.96
"""The normal quantile of a two-sided 95% interval."""


def summary_stats(values: Sequence[float]) -> dict[str, Any]:
    """``n``, ``mean``, ``sd``, ``ci95`` (the half-width), ``lo`` and ``hi`` of ``values``.

    The numbers are ``None`` when there are no values.
    """
    n = len(values)
    if not n:
        return {"n": 0, "mean": None, "sd": None, "ci95": None, "lo": None, "hi": None}
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": half, "lo": mean - half, "hi": mean + half}


def _x(episode: dict[str, Any]) -> float:
    """Where an episode sits on the plot: its seed, or its index when it has none."""
    seed = episode.get("seed")
    return float(seed if seed is not None else episode.get("index") or 0)


def running_band(episodes: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """The running mean and its 95% band over ``episodes`` taken in seed order.

    Each point is ``{"x", "mean", "lo", "hi"}``: the statistics of the episodes whose seed
    (or index, for unseeded ones) is at most ``x``. Sums are kept as the walk goes, so a run
    of many episodes costs one pass.
    """
    ordered = sorted(episodes, key=_x)
    points: list[dict[str, float]] = []
    total = total_sq = 0.0
    for n, episode in enumerate(ordered, start=1):
        value = float(episode.get("reward") or 0.0)
        total += value
        total_sq += value * value
        mean = total / n
        variance = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        half = Z95 * math.sqrt(variance / n)
        points.append({"x": _x(episode), "mean": mean, "lo": mean - half, "hi": mean + half})
    return points
