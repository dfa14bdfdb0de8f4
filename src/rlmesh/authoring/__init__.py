"""Room for env authoring: writing an env to be served, and checking it before it is.

Empty today. What lands here: helpers for writing an env that serves well (its spaces,
``metadata`` and ``spec`` as the wire carries them), a check that runs an env through the
contract a client will see, and registration of served envs. It sits beside
:mod:`rlmesh.models` (both define what a server serves) and may use everything below.
See ``docs/architecture.md``.
"""

__all__: list[str] = []
