"""Room for sandboxes: serving an env from an isolated dependency stack.

Empty today. What lands here: starting ``rlmesh serve`` inside its own uv environment or
container image (``scaleout-isolation.md`` measured both), waiting until it answers, and
stopping it with nothing left behind, so an env with clashing dependencies is one address
away. It sits above :mod:`rlmesh.models` and may use the server, client and vector layers.
See ``docs/architecture.md``.
"""

__all__: list[str] = []
