"""Watching a run live: ``rlmesh.View`` and the viewer ``view=`` starts.

``view=`` on :func:`rlmesh.run`, :func:`rlmesh.session` and ``Model.run``/``Model.session``
shows the env's frames (``render()``, tagged camera roles, image observations) with a
step/reward HUD, in the terminal (:mod:`~rlmesh.viewer.terminal`) or on a loopback web page
(:mod:`~rlmesh.viewer.page`), with skip, quit and source controls. The seam under them:
:mod:`~rlmesh.viewer.frames` (the latest-frame slot), :mod:`~rlmesh.viewer.png`,
:mod:`~rlmesh.viewer.http`. This package sits below ``rlmesh.evaluation`` and knows the runs
only by duck typing; its modules are imported by name (this ``__init__`` loads none). See
``docs/viewer.md``.
"""

__all__: list[str] = []
