"""Sandboxes: serving an env from an isolated dependency stack.

``rlmesh serve`` runs inside its own uv environment (:mod:`rlmesh.sandbox.uv`) or container
image (``rlmesh.sandbox.docker``), is waited for until it answers, and is stopped with
nothing left behind, so an env with clashing dependencies is one address away. The sessions
(:mod:`rlmesh.sandbox.session`) own such a server and are its remote client. It sits above
:mod:`rlmesh.models` and may use the server, client and vector layers. See
``docs/architecture.md`` and ``docs/isolation.md``.
"""

__all__: list[str] = []
