"""Env authoring: writing an env to be served, and describing it before it is built.

:class:`~rlmesh.authoring.factory.EnvFactory` (``rlmesh.EnvFactory``) is an env written to
be served: ``make()`` with declared parameters (:mod:`~rlmesh.authoring.params`: ``Param``,
``ParamSpec``, ``Vector``; validated by :mod:`~rlmesh.authoring.binding` before anything is
built), ``prepare()``/``close()``, tags, and a catalog of
:class:`~rlmesh.authoring.variants.Variant`. :mod:`~rlmesh.authoring.describe` renders a
factory or a model as the ``rlmesh.describe.v1`` envelope (its pieces gathered by
:mod:`~rlmesh.authoring.gather`). It sits below :mod:`rlmesh.models` (``Model.describe``
uses it) and above the server. See ``docs/authoring.md`` and ``docs/architecture.md``.
"""

__all__: list[str] = []
