""":class:`Advisory`: a non-fatal note a resolved adapter carries (a crop, a blank camera).

Resolution either succeeds or raises; what it chose that loses information, or that nothing
could confirm, it reports as advisories instead of failing. An advisory is a string (so
``"blank" in note`` works) with a severity ``level`` and the payload ``path`` it concerns.
"""

from __future__ import annotations

from typing import Literal

from rlmesh.errors import AdapterResolutionError

__all__ = ["Advisory", "AdvisoryLevel", "agreement"]

AdvisoryLevel = Literal["info", "caution", "warn"]
"""How much an advisory matters: ``info`` (by design), ``caution`` (unconfirmed), ``warn``
(data is lost or made up)."""


class Advisory(str):
    """A note about a resolved adapter: the text, its ``level`` and the ``path`` it concerns."""

    level: AdvisoryLevel
    path: str

    def __new__(cls, message: str, *, level: AdvisoryLevel = "warn",
                path: str = "") -> Advisory:
        """Make an advisory.

        Args:
            message: What happened, in one sentence.
            level: ``info``, ``caution`` or ``warn``.
            path: The payload key (or action slice) it concerns.
        """
        if level not in ("info", "caution", "warn"):
            raise ValueError(f"an advisory level is info, caution or warn, not {level!r}")
        note = super().__new__(cls, message)
        note.level = level
        note.path = path
        return note

    def __repr__(self) -> str:
        return f"Advisory({str(self)!r}, level={self.level!r}, path={self.path!r})"


def agreement(where: str, what: str, name: str, model: str | None,
              env: str | None) -> Advisory | None:
    """The rule for a geometry attribute (``frame``, ``reference``) either side may declare.

    Silence when the model asks nothing or both agree; a ``caution`` when only the model says
    (nothing can confirm it); an error when the two differ.

    Args:
        where: The payload key or action slice, for messages.
        what: What the value is, e.g. ``"reads 'proprio/eef_pos'"``.
        name: The attribute.
        model: The model's value.
        env: The env's value.

    Raises:
        AdapterResolutionError: If both declare it and they differ.
    """
    if model is None or model == env:
        return None
    if env is None:
        return Advisory(f"{where}: the model {what} with {name} {model!r}; the env does not say "
                        f"which {name} it uses", level="caution", path=where)
    raise AdapterResolutionError(f"{where}: the model {what} with {name} {model!r}, the env "
                                 f"with {env!r}")
