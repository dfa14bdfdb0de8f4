"""How the runners drive a live viewer (``view=``): start it, feed it, obey its controls.

The viewer itself is :mod:`rlmesh.viewer`; this module is the runners' side of it. A skip
truncates the episode being shown; a quit truncates it too and ends the run, whose result
then holds the finished episodes and that one, with ``interrupted`` set. On a vector env the
viewer shows lane 0 (and a skip truncates lane 0's episode; a quit ends every lane's).
"""

from __future__ import annotations

from typing import Any

from rlmesh.evaluation.adapting import env_metadata
from rlmesh.viewer.live import LiveViewer, open_viewer

__all__ = ["LiveViewer", "cut_by_viewer", "start_viewer"]


def start_viewer(view: Any, env: Any, observation_space: Any,
                 vector: bool = False) -> LiveViewer | None:
    """The live viewer ``view`` names, started on ``env`` (``None`` for no viewer).

    Setup failures do not raise: they warn, and the run goes on without the viewer.
    """
    viewer = open_viewer(view)
    if viewer is not None:
        viewer.start(env, observation_space, env_metadata(env), vector)
    return viewer


def cut_by_viewer(viewer: LiveViewer, observation: Any, reward: Any, step: int,
                  terminated: Any, truncated: Any) -> bool:
    """Show a step; whether the viewer asks to end the episode now (skip or quit)."""
    viewer.on_step(observation, float(reward), step, bool(terminated), bool(truncated))
    return viewer.should_skip() or viewer.should_quit()
