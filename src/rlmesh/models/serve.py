"""Serving a model: ``Model.serve`` / ``rlmesh serve-model`` put a policy behind an address.

The model plugs into the server through its source (:class:`ModelSource`, a
:class:`rlmesh.server.seam.Source`): the server knows nothing of models.

A model endpoint answers ``PREDICT`` (one observation) and ``PREDICT_BATCH`` (a batch, e.g.
the lanes of a vector env, answered by one ``predict_batch`` call). Unlike an env instance,
one model serves every session at once (each in its own thread), so its ``predict`` must be
thread-safe. A model that raises answers ``model_error`` with its traceback; the session and
the server go on. A served model sees the same values as when it runs locally: a
``rlmesh.torch.Model`` gets tensors and may return tensors, a ``rlmesh.Model`` plain values.
"""

from __future__ import annotations

import threading
from typing import Any

from rlmesh import protocol as P
from rlmesh.evaluation.policy import Policy
from rlmesh.server.seam import Handler, SessionPort, Source
from rlmesh.wire.schema import space_to_schema

__all__ = ["ModelSource"]


class ModelSource(Source):
    """Hands the one served model to every session; its handlers answer predictions.

    Args:
        model: The model (its ``load`` is called here, its ``close`` with the source).
    """

    noun = "model"

    def __init__(self, model: Policy) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._closed = False
        contract: dict[str, Any] = {"kind": "model", "name": model.name,
                                    "batched": model.batched, "num_envs": 1,
                                    "render_mode": None, "metadata": {}, "spec": None}
        if model.observation_space is not None and model.action_space is not None:
            contract["observation_space"] = space_to_schema(model.observation_space)
            contract["action_space"] = space_to_schema(model.action_space)
        self.contract = contract
        model.load()

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
        self.model.close()

    def handlers(self, session: SessionPort) -> dict[int, Handler]:
        """PREDICT and PREDICT_BATCH, on the model's values (tensors for a torch model...)."""
        predict = self.model.predictor()
        batch = self.model.batch()

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

        return {P.OP_PREDICT: answer, P.OP_PREDICT_BATCH: answer}
