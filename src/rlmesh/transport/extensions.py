"""The transport's optional C extensions: loaded where they are built, or why they are not.

A source install with a C compiler builds ``rlmesh.transport._fastslots`` and
``rlmesh.transport._fastframes`` (``setup.py``); their Python faces,
:mod:`rlmesh.transport.fastslots` and :mod:`rlmesh.transport.fastframes`, load them here.
``RLMESH_PURE_PYTHON=1`` (set when rlmesh is imported) leaves both unused.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Protocol

__all__ = ["ServesSteps", "load"]


class ServesSteps(Protocol):
    """A compiled server's step in one call, over slots or frames alike (``serve``)."""

    failed: int | None
    """The request id of the step whose env raised in the last :meth:`serve`, else ``None``."""
    stepping: bool
    """Whether :meth:`serve` is calling the env's ``step`` now."""

    def serve(self, env: Any, check: Any, bounds: Any) -> Any:
        """Take a step, check its action, call ``env.step`` and put its results.

        Args:
            env: What is stepped (its ``step`` is called with the action).
            check: The action check (a callable answering truth), or ``None``: every action
                passes.
            bounds: ``(low, high, shape, types)``: an action that is a Python int (of shape
                ``()``) or an exact one of ``types`` holding 8-byte signed ints of ``shape``
                passes when every item is in ``[low, high)``, without ``check``; or ``None``.

        Returns:
            A code (``DONE``, ``WAKE``, or take's ``RECEIVE`` or ``ASLEEP``: nothing taken);
            ``(rid, action)`` for a refused action (not stepped, not answered); or ``(rid,
            action, result)`` for results it did not answer (another layout or kind).

        Raises:
            Exception: What the env's step raised (:attr:`failed` is then its request id),
                or anything else did (:attr:`failed` is ``None``).
        """


def load(name: str) -> tuple[Any, str | None]:
    """The extension ``rlmesh.transport.<name>``, or ``None`` and why it is not used.

    Args:
        name: The extension module's name (``"_fastslots"``, ``"_fastframes"``).
    """
    if os.environ.get("RLMESH_PURE_PYTHON", "") not in ("", "0"):
        return None, "RLMESH_PURE_PYTHON is set"
    try:
        module = importlib.import_module(f"rlmesh.transport.{name}")
    except ImportError as exc:
        return None, f"the C extension is not built ({exc})"
    return module, None
