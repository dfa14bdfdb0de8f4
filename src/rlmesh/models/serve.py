"""Serving a model: ``Model.serve`` / ``rlmesh serve-model`` put a policy behind an address.

The model plugs into the server through its source (:class:`ModelSource`, a
:class:`rlmesh.server.seam.Source`): the server knows nothing of models.

A model endpoint answers ``PREDICT`` (one observation) and ``PREDICT_BATCH`` (a batch, e.g.
the lanes of a vector env, answered by one ``predict_batch`` call). Unlike an env instance,
one model serves every session at once (each in its own thread), so its ``predict`` must be
thread-safe. A model that sets ``allow_fusion = True`` and has a batch corner has the
single observations of concurrent sessions fused into one ``predict_batch`` call
(:mod:`rlmesh.models.fusion`). A model that raises answers ``model_error`` with its
traceback; the session and the server go on. A batch of more than ``max_batch`` lanes
(65,536 by default), or an array batch whose lanes do not have the shape of the model's
observation space, is refused with ``protocol_error`` before the model sees it (the session
goes on). A served model sees the same values as when it runs locally: a
``rlmesh.torch.Model`` gets tensors and may return tensors, a ``rlmesh.Model`` plain values.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh import protocol as P
from rlmesh.adapters.model_spec import ModelSpec
from rlmesh.evaluation.policy import Policy
from rlmesh.models.fusion import Fuser
from rlmesh.server.seam import Handler, SessionPort, Source
from rlmesh.vector.batching import ARRAY_SPACES
from rlmesh.wire.schema import space_to_schema

__all__ = ["DEFAULT_MAX_BATCH", "ModelSource", "batch_problem", "claimed_lanes"]

DEFAULT_MAX_BATCH = 65_536
"""Most lanes one ``PREDICT_BATCH`` may hold (``ModelSource(max_batch=...)``)."""
_MAX_DEPTH = 32


def spec_metadata(model: Policy) -> dict[str, Any]:
    """The contract metadata publishing ``model``'s adapter spec (empty without one)."""
    spec = getattr(model, "spec", None)
    return spec.to_metadata() if isinstance(spec, ModelSpec) else {}


class ModelSource(Source):
    """Hands the one served model to every session; its handlers answer predictions.

    Args:
        model: The model (its ``load`` is called here, its ``close`` with the source).
        max_batch: Most lanes a ``PREDICT_BATCH`` may hold; a larger batch is refused with
            ``protocol_error`` (each lane may cost a ``predict`` call).
    """

    noun = "model"

    def __init__(self, model: Policy, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.model = model
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._closed = False
        contract: dict[str, Any] = {"kind": "model", "name": model.name,
                                    "batched": model.batched, "num_envs": 1,
                                    "render_mode": None, "metadata": spec_metadata(model),
                                    "spec": None}
        if model.observation_space is not None and model.action_space is not None:
            contract["observation_space"] = space_to_schema(model.observation_space)
            contract["action_space"] = space_to_schema(model.action_space)
        self.contract = contract
        model.load()
        self.fuser: Fuser | None = None
        """Fuses concurrent sessions' predictions (a model with ``allow_fusion`` and a batch
        corner; see :mod:`rlmesh.models.fusion`)."""
        if getattr(model, "allow_fusion", False) and model.batched:
            self.fuser = Fuser(model.batch(), max_lanes=min(max_batch, 256))

    @property
    def busy(self) -> bool:
        """A model is never busy: it serves every session at once."""
        return False

    @property
    def shared(self) -> bool:
        """One model for all sessions."""
        return True

    def acquire(self) -> Policy:
        """The model, for a new session."""
        return self.model

    def release(self, resource: Any) -> None:
        """Nothing to give back."""

    def close(self) -> None:
        """Close the model once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.model.finish()

    def handlers(self, session: SessionPort) -> dict[int, Handler]:
        """PREDICT and PREDICT_BATCH, on the model's values (tensors for a torch model...)."""
        fuse = self.fuser is not None and self.model.execution_horizon <= 1
        predict = self.fuser if fuse and self.fuser is not None else self.model.predictor()
        batch = self.model.batch()
        space, max_batch = self.model.observation_space, self.max_batch

        def answer(msg: list[Any]) -> None:
            op, rid = msg[0], msg[1]
            if len(msg) != 3:
                session.fatal(rid, P.E_PROTOCOL, f"{P.OP_NAMES[op]} takes one argument")
            try:
                action = predict(msg[2]) if op == P.OP_PREDICT else batch(msg[2])
            except Exception as exc:
                session.error(rid, P.E_MODEL, str(exc), exc=exc)
                return
            session.send([P.STATUS_OK, rid, action])

        def answer_batch(msg: list[Any]) -> None:
            problem = batch_problem(msg[2], space, max_batch) if len(msg) == 3 else None
            if problem is not None:
                session.error(msg[1], P.E_PROTOCOL, problem)
                return
            answer(msg)

        return {P.OP_PREDICT: answer, P.OP_PREDICT_BATCH: answer_batch}


def claimed_lanes(batch: Any, limit: int, depth: int = 0) -> int:
    """The most lanes any part of ``batch`` holds: a bound on the ``predict`` calls it costs.

    A list or an array counts its first axis; a dict or tuple (of batches, or of items) the
    largest of its parts, and a tuple its own length too. Counting stops above ``limit``.
    """
    if isinstance(batch, np.ndarray):
        return int(batch.shape[0]) if batch.ndim else 0
    if isinstance(batch, list):
        return len(batch)
    if not isinstance(batch, (dict, tuple)):
        return 0
    most = len(batch) if isinstance(batch, tuple) else 0
    if depth >= _MAX_DEPTH:
        return max(most, 1)
    for part in (batch.values() if isinstance(batch, dict) else batch):
        if most > limit:
            break
        most = max(most, claimed_lanes(part, limit, depth + 1))
    return most


def _fits(space: gs.Space[Any], batch: Any) -> bool:
    """Whether array batches have the space's shape per lane (other values are not checked)."""
    if isinstance(space, ARRAY_SPACES):
        return not isinstance(batch, np.ndarray) or (
            batch.ndim >= 1 and batch.shape[1:] == space.shape)
    if isinstance(space, gs.Dict) and isinstance(batch, dict):
        return all(key in batch and _fits(sub, batch[key]) for key, sub in space.spaces.items())
    if isinstance(space, gs.Tuple) and isinstance(batch, tuple):
        return len(batch) == len(space.spaces) and all(
            _fits(sub, part) for sub, part in zip(space.spaces, batch, strict=True))
    return True


def batch_problem(batch: Any, space: gs.Space[Any] | None, max_batch: int) -> str | None:
    """Why a ``PREDICT_BATCH`` is refused: too many lanes, or lanes of the wrong shape.

    Returns:
        The error message, or ``None`` for a batch the model may see.
    """
    lanes = claimed_lanes(batch, max_batch)
    if lanes > max_batch:
        return (f"a batch of {lanes} lanes exceeds this endpoint's limit of {max_batch}; "
                "send it in parts")
    if space is not None and not _fits(space, batch):
        shape = getattr(batch, "shape", None)
        return (f"the batch{f' of shape {shape}' if shape is not None else ''} does not "
                f"match the model's observation space {space} (a batch has one lane per row)")
    return None
