"""Room for the viewer: watching a served env or a run's episodes in a browser.

Empty today. What lands here: a small local web server that shows an endpoint's frames and a
:class:`~rlmesh.RunResult`'s episodes as they are played. It sits with the public faces, just
below the command line, and may use every layer under it. See ``docs/architecture.md``.
"""

__all__: list[str] = []
