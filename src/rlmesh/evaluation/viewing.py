"""``rlmesh.evaluate(..., view=...)``: the run's hooks forwarded to the dashboards.

The dashboards (the web page, :mod:`rlmesh.viewer.dashboard`, and the terminal,
:mod:`rlmesh.viewer.board_terminal`, both reading one board) sit below this layer and know
plain values only; :class:`DashboardHooks` is the :class:`~rlmesh.Hooks` that feeds the
board: episode starts, steps and ends, frames within its budget, events as they happen, the
summary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.results import EpisodeResult, RunResult

if TYPE_CHECKING:
    from rlmesh.viewer.board import Board

__all__ = ["DashboardHooks", "Viewing", "open_view"]


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


class Viewing(NamedTuple):
    """How a run is watched: the hooks to add, what to call after it, when to stop early."""

    hooks: Hooks | None
    close: Callable[[], None]
    stop: threading.Event | None


def open_view(view: Any, endpoints: list[str], planned: int) -> Viewing:
    """The hooks that show a run on ``view``, what to call when it is over, its stop signal.

    ``None`` or ``False`` shows nothing. A :class:`~rlmesh.viewer.dashboard.Dashboard` or an
    :class:`~rlmesh.viewer.watch.EvalWatch` is used and left open (its owner closes it);
    ``"http"``, ``"http:PORT"``, ``"terminal"``, ``True``, ``"both"`` or a ``rlmesh.View``
    start the displays they name (printing the web page's address) and close them after the
    run. The stop signal is set when the viewer asks the run to stop (``q`` in the terminal).

    Raises:
        ValueError: For a view an evaluation cannot be shown on.
        TypeError: For a ``view=`` value of the wrong type.
    """
    if view is None or view is False:
        return Viewing(None, _nothing, None)
    from rlmesh.viewer.watch import EvalWatch  # (loaded only when a run is watched)

    owned = not isinstance(view, EvalWatch)
    watch = EvalWatch.open(view) if owned else view
    if owned and not watch.showing:  # a terminal that is not one: nothing to feed
        return Viewing(None, watch.close if owned else _nothing, None)
    watch.board.begin(endpoints, planned)
    return Viewing(DashboardHooks(watch.board), watch.close if owned else _nothing,
                   watch.stop_requested)


def _nothing() -> None:
    """Nothing to close."""
