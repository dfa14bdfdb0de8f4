"""``rlmesh.evaluate(..., view=...)``: the run's hooks forwarded to the web dashboard.

The dashboard (:mod:`rlmesh.viewer.dashboard`) sits below this layer and knows plain values
only; :class:`DashboardHooks` is the :class:`~rlmesh.Hooks` that feeds it: episode starts,
steps and ends, frames within the dashboard's budget, events as they happen, the summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.results import EpisodeResult, RunResult

if TYPE_CHECKING:
    from rlmesh.viewer.board import Board

__all__ = ["DashboardHooks", "open_view"]


class DashboardHooks(Hooks):
    """Hooks that feed a dashboard's :class:`~rlmesh.viewer.board.Board`."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        """The tile of ``endpoint`` shows the episode."""
        self.board.episode_start(index, seed, endpoint, observation)

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        """The episode's step and return grow."""
        self.board.step(index, step, reward, observation)

    def wants_frame(self, index: int) -> bool:
        """The dashboard's frame budget decides."""
        return self.board.wants_frame(index)

    def on_frame(self, index: int, frame: Any) -> None:
        """The frame goes to its tile."""
        self.board.frame(index, frame)

    def on_event(self, event: dict[str, Any]) -> None:
        """The event joins the log."""
        self.board.event(event)

    def on_episode_end(self, result: EpisodeResult) -> None:
        """The episode joins the plot."""
        self.board.episode_end(result.to_dict())

    def on_run_end(self, result: RunResult) -> None:
        """The summary is shown."""
        summary = {**result.summary(), "complete": result.complete,
                   "wall_s": result.settings.get("wall_s")}
        self.board.end(summary, result.rewards)


def open_view(view: Any, endpoints: list[str],
              planned: int) -> tuple[Hooks | None, Callable[[], None]]:
    """The hooks that show a run on ``view``, and what to call when the run is over.

    ``None`` or ``False`` shows nothing. A :class:`~rlmesh.viewer.dashboard.Dashboard` is
    used and left open (its owner closes it); ``"http"``, ``"http:PORT"`` or a
    ``rlmesh.View`` start one on loopback, print its address, and close it after the run.

    Raises:
        ValueError: For a view an evaluation cannot be shown on.
    """
    if view is None or view is False:
        return None, _nothing
    from rlmesh.viewer.dashboard import Dashboard  # (loaded only when a run is watched)

    dashboard, owned = Dashboard.from_view(view)
    dashboard.board.begin(endpoints, planned)
    if owned:
        print(f"rlmesh: watch the evaluation at {dashboard.url}", file=sys.stderr)
    return DashboardHooks(dashboard.board), (dashboard.close if owned else _nothing)


def _nothing() -> None:
    """Nothing to close."""
