""":class:`Advisory`: a non-fatal note a resolved adapter carries (a crop, a blank camera).

Resolution either succeeds or raises; what it chose that loses information, or that nothing
could confirm, it reports as advisories instead of failing. An advisory is a string (so
``"blank" in note`` works) with a severity ``level`` and the payload ``path`` it concerns.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Advisory", "AdvisoryLevel"]

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
