"""Room for scale-out: fleets of endpoints placed by a cluster manager (Ray first).

Empty today. What lands here: starting endpoints as cluster actors, handing their addresses
to :class:`~rlmesh.RemoteVectorEnv` and :func:`~rlmesh.evaluate`, and replacing the ones that
die. It sits beside :mod:`rlmesh.sandbox`, above the vector, evaluation and model layers.
See ``docs/architecture.md``.
"""

__all__: list[str] = []
