"""The four predict corners of a model, derived downward, and how they are called.

:class:`Corners` is the part of :class:`rlmesh.evaluation.policy.Policy` that knows the
corners: ``predict`` (one observation, one action), ``predict_batch`` (leaves ``[N, ...]``),
``predict_chunk`` (a chunk ``[H, ...]`` of future actions) and ``predict_chunk_batch``
(``[N, H, ...]``). A model implements any of them; the others are derived only downward (a
batch corner serves one observation as a batch of one, a chunk corner one action as its
chunk's first). A corner that declares a parameter named ``context`` is handed one: a list,
one per row, on the batch corners (:meth:`Corners.predict_lanes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlmesh.evaluation.corners import call_chunk, chunk_step, first_lane, lane_count, stack_one
from rlmesh.evaluation.lifecycle import EpisodeState, accepts_context, anonymous_context
from rlmesh.vector.batching import split_lanes

__all__ = ["Corners"]


class Corners:
    """The predict corners a model may implement, and their derivations."""

    _predict: Callable[[Any], Any] | None = None
    _predict_batch: Callable[[Any], Any] | None = None
    _context_corner: str | None = None
    """The batch corner that takes ``context`` (its attribute name; ``""``: none), once found."""

    # -- what a subclass overrides ------------------------------------------------------------

    def predict(self, observation: Any) -> Any:
        """The action for ``observation``.

        Not overridden, it is derived from another corner: ``predict_batch`` on a batch of
        one, else the first action of ``predict_chunk`` or ``predict_chunk_batch``.
        """
        if self._predict is not None:
            return self._predict(observation)
        if self.batched:
            return first_lane(self.predict_batch(stack_one(observation)))
        if self._defines("predict_chunk") or self._defines("predict_chunk_batch"):
            return chunk_step(self._chunk(observation, 1), 0)
        raise NotImplementedError(
            f"{type(self).__qualname__} has no predict: pass a callable to Model(...) or "
            "override predict (or predict_batch, predict_chunk, predict_chunk_batch)")

    def predict_batch(self, observations: Any) -> Any:
        """Actions for a batch of observations (the first axis is the lane).

        Not overridden: the first action of each lane's ``predict_chunk_batch`` chunk, else
        ``predict`` lane by lane.
        """
        if self._predict_batch is not None:
            return self._predict_batch(observations)
        if self._defines("predict_chunk_batch"):
            return self._call_chunk_batch(observations, 1)[:, 0]
        return np.stack([np.asarray(self.predict(o)) for o in split_lanes(observations)])

    def predict_chunk(self, observation: Any, execution_horizon: int = 1) -> Any:
        """A chunk of actions for ``observation`` (the first axis is the step).

        Not overridden: lane 0 of ``predict_chunk_batch`` on a batch of one.

        Raises:
            NotImplementedError: If the model has no chunk corner.
        """
        if self._defines("predict_chunk_batch"):
            return first_lane(self._call_chunk_batch(stack_one(observation),
                                                     execution_horizon))
        raise NotImplementedError(f"{type(self).__qualname__} has no chunk corner")

    def predict_chunk_batch(self, observations: Any, execution_horizon: int = 1) -> Any:
        """Chunks for a batch of observations (``[N, H, ...]``); override to provide it.

        Raises:
            NotImplementedError: Unless overridden.
        """
        raise NotImplementedError(f"{type(self).__qualname__} has no predict_chunk_batch")

    def _defines(self, corner: str) -> bool:
        return getattr(type(self), corner) is not getattr(Corners, corner)

    def _call_chunk_batch(self, observations: Any, horizon: int) -> Any:
        return call_chunk(self.predict_chunk_batch, observations, horizon)

    def _chunk(self, observation: Any, horizon: int, context: Any = None) -> Any:
        """A chunk from the most direct chunk corner (``context`` if it declares one)."""
        if self._defines("predict_chunk"):
            return call_chunk(self.predict_chunk, observation, horizon, context)
        if context is not None:
            return first_lane(call_chunk(self.predict_chunk_batch, stack_one(observation),
                                         horizon, [context]))
        return self.predict_chunk(observation, horizon)

    def _chunk_context(self) -> bool:
        """Whether the chunk corner :meth:`_chunk` calls declares ``context``."""
        corner = self.predict_chunk if self._defines("predict_chunk") else \
            self.predict_chunk_batch
        return self.chunked and accepts_context(corner)

    @property
    def chunked(self) -> bool:
        """Whether the model has a chunk corner (``predict_chunk`` or ``predict_chunk_batch``)."""
        return self._defines("predict_chunk") or self._defines("predict_chunk_batch")

    @property
    def batched(self) -> bool:
        """Whether a batch predictor exists (given, overridden, or from a chunk batch)."""
        return (self._predict_batch is not None
                or type(self).predict_batch is not Corners.predict_batch
                or self._defines("predict_chunk_batch"))

    def _batch_corner(self) -> Callable[..., Any] | None:
        """The batch corner the model itself defines, if it declares ``context``.

        Which one that is (read off signatures) is found once per model, not per step: the
        name is kept, never the bound method, so a copied model answers for itself.
        """
        if self._context_corner is None:
            self._context_corner = self._find_context_corner()
        name = self._context_corner
        return getattr(self, name) if name else None

    def _find_context_corner(self) -> str:
        """``"_predict_batch"``, ``"predict_batch"``, ``"predict_chunk_batch"`` or ``""``."""
        name = ""
        if self._predict_batch is not None:
            name = "_predict_batch"
        elif type(self).predict_batch is not Corners.predict_batch:
            name = "predict_batch"
        elif self._defines("predict_chunk_batch"):
            name = "predict_chunk_batch"
        return name if name and accepts_context(getattr(self, name)) else ""

    def predict_lanes(self, observations: Any, episodes: list[EpisodeState | None] | None = None
                      ) -> Any:
        """:meth:`predict_batch`, with a context per row for a corner that declares one.

        Row ``k`` gets ``episodes[k]``'s context, or an anonymous one.
        """
        corner = self._batch_corner()
        if corner is None:
            return self.predict_batch(observations)
        rows = episodes if episodes is not None else [None] * lane_count(observations)
        contexts = [e.context() if e is not None else anonymous_context() for e in rows]
        if corner == self.predict_chunk_batch:  # (bound methods compare by function)
            return call_chunk(corner, observations, 1, contexts)[:, 0]
        return corner(observations, context=contexts)
