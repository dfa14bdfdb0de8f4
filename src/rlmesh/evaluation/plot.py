"""``rlmesh plot``: a saved run as a picture (returns per endpoint, episode lengths).

Needs matplotlib (the ``rlmesh[plot]`` extra); drawn off-screen, written as PNG.
"""

from __future__ import annotations

import os
from typing import Any

from rlmesh.evaluation.results import RunResult
from rlmesh.extras import missing_extra

__all__ = ["plot_run", "pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, drawing off-screen.

    Raises:
        MissingExtraError: If matplotlib is not installed (it says how to add the extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise missing_extra("rlmesh plot", "matplotlib", "plot") from exc
    return plt


def plot_run(result: RunResult, path: str | os.PathLike[str], title: str | None = None) -> None:
    """Draw returns per endpoint and a histogram of episode lengths into ``path`` (PNG).

    Raises:
        ImportError: If matplotlib is not installed (the ``plot`` extra).
        ValueError: If the run has no episodes.
    """
    plt = pyplot()
    if not result.episodes:
        raise ValueError("the run has no finished episodes to plot")
    groups = result.by_endpoint()
    names = sorted(groups)
    figure: Any
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    try:
        for x, name in enumerate(names):
            rewards = [e.reward for e in groups[name]]
            # A small deterministic jitter keeps equal returns apart.
            xs = [x + ((i % 7) - 3) * 0.03 for i in range(len(rewards))]
            left.scatter(xs, rewards, s=14, alpha=0.7)
            mean = sum(rewards) / len(rewards)
            left.hlines(mean, x - 0.3, x + 0.3, colors="black", linewidth=2)
        left.set_xticks(range(len(names)), [_short(n) for n in names], rotation=20,
                        ha="right", fontsize=8)
        left.set_ylabel("return")
        left.set_xlabel("endpoint")
        left.set_title(f"returns per endpoint (mean {result.mean_reward:.2f})")
        lengths = [e.steps for e in result.episodes]
        bins = min(30, max(5, len(set(lengths))))
        right.hist(lengths, bins=bins, color="tab:gray", edgecolor="black")
        right.set_xlabel("episode length (steps)")
        right.set_ylabel("episodes")
        right.yaxis.get_major_locator().set_params(integer=True)
        right.set_title(f"{result.num_episodes} episodes, {result.total_steps} steps")
        policy = result.settings.get("policy")
        env_id = result.settings.get("env_id")
        version = result.settings.get("rlmesh_version")
        figure.suptitle(title or " · ".join(part for part in (
            f"rlmesh eval: {policy or 'policy'}", f"on {env_id}" if env_id else "",
            f"rlmesh {version}" if version else "") if part))
        figure.tight_layout()
        figure.savefig(os.fspath(path), format="png", dpi=110)
    finally:
        plt.close(figure)


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else "..." + name[-(limit - 3):]
