"""``RemoteModel``: a model served at an address, used like a local one.

``rlmesh.run(RemoteModel(a), RemoteEnv(b))`` and ``rlmesh.evaluate(RemoteModel(a), [...])``
work unchanged: every observation goes to the model endpoint and its action comes back. Each
thread that uses a ``RemoteModel`` gets its own connection (so ``evaluate``'s endpoint
threads ask concurrently), and a vector env's lanes go out as one ``PREDICT_BATCH``.
"""

from __future__ import annotations

import threading
from typing import Any

from rlmesh import protocol as P
from rlmesh.adapters.model_spec import ModelSpec
from rlmesh.client.channel import Channel
from rlmesh.client.options import ConnectOptions, endpoint_address
from rlmesh.errors import EndpointKindError
from rlmesh.models.model import Model
from rlmesh.values import coerce_action, coerce_actions
from rlmesh.wire.schema import schema_to_space

__all__ = ["RemoteModel"]


class RemoteModel(Model):
    """A model served by ``Model.serve`` or ``rlmesh serve-model``.

    Args:
        address: The model endpoint.
        options: A :class:`~rlmesh.ConnectOptions`.
        host: TCP host, instead of ``address`` (with ``port``).
        port: TCP port, instead of ``address``.
        path: Unix socket path, instead of ``address``.
        transport: ``"tcp"`` or ``"unix"``: which kind ``host``/``port``/``path`` name.
        connect_timeout_seconds: ``connect_timeout`` under the reference API's name.
        request_timeout_seconds: ``timeout`` under the reference API's name.
        **changes: Fields of ``options`` to set (``connect_timeout``, ``timeout``, ``token``,
            ``tls``, as for ``RemoteEnv``).

    Raises:
        EndpointKindError: If ``address`` serves an env, not a model.
        TypeError: No endpoint is named, or a limit is given under both of its names.
        ValueError: ``address`` is combined with the helpers, or they are incomplete.
        RemoteModelError: (from predict) The served model raised; carries its traceback.
    """

    def __init__(self, address: str | None = None, options: ConnectOptions | None = None,
                 *, host: str | None = None, port: int | None = None, path: str | None = None,
                 transport: str | None = None, connect_timeout_seconds: float | None = None,
                 request_timeout_seconds: float | None = None, **changes: Any) -> None:
        address = endpoint_address(address, host, port, path, transport)
        for ours, theirs in (("connect_timeout", connect_timeout_seconds),
                             ("timeout", request_timeout_seconds)):
            if theirs is not None:
                if ours in changes:
                    raise TypeError(f"pass either {ours}= or its *_seconds spelling, not both")
                changes[ours] = theirs
        super().__init__(name=f"remote model at {address}")
        self.address = address
        self.options = (options or ConnectOptions()).replace(**changes)
        self._local = threading.local()
        self._channels: list[Channel] = []
        self._lock = threading.Lock()
        contract = self._channel().contract
        if contract.get("kind") != "model":
            self.close()
            raise EndpointKindError(f"{address} serves a {contract.get('kind')!r} endpoint, "
                                    "not a model (use RemoteEnv or RemoteVectorEnv)")
        self.contract = contract
        self.name = str(contract.get("name") or self.name)
        metadata = contract.get("metadata")
        if isinstance(metadata, dict):
            self.spec = ModelSpec.from_metadata(metadata)
        if "observation_space" in contract and "action_space" in contract:
            self.bind(schema_to_space(contract["observation_space"]),
                      schema_to_space(contract["action_space"]))

    def _channel(self) -> Channel:
        channel: Channel | None = getattr(self._local, "channel", None)
        if channel is None or channel.closed:
            channel = Channel(self.address, self.options)
            self._local.channel = channel
            with self._lock:
                self._channels.append(channel)
        return channel

    def predict(self, observation: Any) -> Any:
        """The served model's action for ``observation`` (in the action space's dtype)."""
        action = self._channel().request(P.OP_PREDICT, observation)[2]
        space = self.action_space
        return action if space is None else coerce_action(space, action)

    def predict_batch(self, observations: Any) -> Any:
        """The served model's actions for a batch, in one request."""
        actions = self._channel().request(P.OP_PREDICT_BATCH, observations)[2]
        return coerce_actions(self.action_space, actions)

    @property
    def batched(self) -> bool:
        """Always: a batch goes out as one request."""
        return True

    def close(self) -> None:
        """Close every connection this object opened (the served model stays up)."""
        with self._lock:
            channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
