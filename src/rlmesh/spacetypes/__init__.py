"""The space classes behind :mod:`rlmesh.spaces`: Gymnasium's, with a spec each.

:mod:`rlmesh.spacetypes.spec` defines ``SpaceSpec`` and describes any Gymnasium space;
:mod:`rlmesh.spacetypes.classes` the subclasses ``rlmesh.spaces`` exports;
:mod:`rlmesh.spacetypes.convert` the conversions between spaces and specs.
"""

__all__: list[str] = []
