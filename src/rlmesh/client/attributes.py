"""Remote attribute access on the client: Gymnasium's escape hatches on remote envs.

``env.unwrapped.x_threshold``, ``env.get_wrapper_attr("x_threshold")``,
``env.set_wrapper_attr("gravity", 5.0)`` and ``env.unwrapped.get_action_meanings()`` reach
the served env through the ``GET_ATTR``, ``CALL`` and ``SET_ATTR`` ops, and a vector env's
``get_attr``, ``set_attr`` and ``call`` reach every sub-env, with the semantics of
``gymnasium.vector.SyncVectorEnv``. The server enforces the rules (``docs/protocol.md``
section 13); the client checks names first so that a refused request is never sent.

* :class:`RemoteAttributes` (mixed into :class:`rlmesh.numpy.RemoteEnv`): ``__getattr__``,
  ``get_wrapper_attr``, ``has_wrapper_attr`` and ``set_wrapper_attr``.
* :class:`RemoteMethod`: what a served env's method looks like on the client.
* :class:`VectorAttributes` (mixed into :class:`rlmesh.RemoteVectorEnv`): ``get_attr``,
  ``set_attr`` and ``call`` over one vector endpoint, many single-env endpoints or many vector
  endpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from rlmesh import protocol as P
from rlmesh.client.channel import Channel, gather
from rlmesh.errors import EnvClosedError, NotAllowedError, RLMeshError
from rlmesh.protocol.attributes import refusal
from rlmesh.vector.vector_fleet import VectorFleet

if TYPE_CHECKING:
    from rlmesh.vector.env_fleet import Fleet

__all__ = ["RemoteAttributes", "RemoteMethod", "VectorAttributes"]

VECTOR_NAMES: Final = frozenset({"num_envs", "single_observation_space", "single_action_space"})
"""The vector API: a single env does not have it (probed with ``hasattr``, answered locally)."""


def _offered(channel: Channel) -> bool:
    capabilities = channel.contract.get("capabilities")
    return isinstance(capabilities, list) and P.CAP_ATTRIBUTES in capabilities


def _not_offered(channel: Channel) -> NotAllowedError:
    return NotAllowedError(
        f"{channel.address} does not offer remote attribute access (the server runs with "
        "ServeOptions(remote_attributes=False))")


def _check(channel: Channel, op: int, name: Any, *, vector: bool) -> None:
    """Raise what the server would answer, without sending anything."""
    why = refusal(op, name, vector=vector)
    if why is not None:
        raise NotAllowedError(why)
    if not _offered(channel):
        raise _not_offered(channel)


class RemoteMethod:
    """A method of the served env; calling it calls the method on the server.

    Arguments and the result travel as data (numpy arrays, scalars, containers), never
    pickled. Errors raised by the remote method arrive as ``RemoteEnvError`` with the remote
    traceback.
    """

    def __init__(self, env: RemoteAttributes, name: str) -> None:
        self.__name__ = name
        self.env = env

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the remote method with ``args`` and ``kwargs``; returns its result."""
        return self.env._remote_call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote method {self.__name__} of {self.env!r}>"


class RemoteAttributes:
    """Reads, sets and calls the served env's attributes (mixin of the remote env classes).

    Attributes the remote env has itself (its spaces, ``metadata``, ``render_mode``, ``spec``,
    ``timeout``, its methods) are local. Any other public name is looked up on the served env,
    through its wrappers: a value arrives as data, a method as a :class:`RemoteMethod`. A name
    the served env lacks raises :class:`~rlmesh.RemoteAttributeError` (an
    ``AttributeError``), so ``hasattr`` and ``getattr(env, name, default)`` work as usual;
    names starting with ``_`` and the vector API (``num_envs``...) are answered locally, with
    no network traffic. A plain ``setattr`` stays local (as on a Gymnasium wrapper); use
    :meth:`set_wrapper_attr` to change the served env.
    """

    _channel: Channel | None

    def _attribute_value(self, value: Any) -> Any:
        """Convert a value received from the served env (the plain client's hook)."""
        return value

    def _attribute_channel(self) -> Channel | None:
        """The connection to ask (``None``: closed or never connected; the env's hook)."""
        channel: Channel | None = self.__dict__.get("_channel")
        return channel

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails.
        if name.startswith("_") or name in VECTOR_NAMES:
            raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")
        channel = self._attribute_channel()
        if channel is None or channel.closed:
            raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r} "
                                 "(it is not connected to look the name up on the served env)")
        if not _offered(channel):
            raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r} "
                                 f"({channel.address} does not offer remote attribute access)")
        return self._remote_get(channel, name)

    def _remote_get(self, channel: Channel, name: str) -> Any:
        why = refusal(P.OP_GET_ATTR, name, vector=False)
        if why is not None:
            raise AttributeError(why)
        reply = channel.request(P.OP_GET_ATTR, name)
        if reply[3]:
            return RemoteMethod(self, name)
        return self._attribute_value(reply[2])

    def _remote_call(self, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        channel = self._connected()
        _check(channel, P.OP_CALL, name, vector=False)
        return self._attribute_value(channel.request(P.OP_CALL, name, list(args), kwargs)[2])

    def _connected(self) -> Channel:
        channel = self._attribute_channel()
        if channel is None:
            raise EnvClosedError("this env is not connected")
        return channel

    def _is_local(self, name: str) -> bool:
        return name in self.__dict__ or hasattr(type(self), name)

    def get_wrapper_attr(self, name: str) -> Any:
        """The attribute ``name``: this object's own, else the served env's (through wrappers).

        Raises:
            RemoteAttributeError: The served env has no such attribute.
            NotAllowedError: The server does not offer remote attribute access.
        """
        if self._is_local(name) or name.startswith("_") or name in VECTOR_NAMES:
            return getattr(self, name)
        channel = self._connected()
        if not _offered(channel):
            raise _not_offered(channel)
        return self._remote_get(channel, name)

    def has_wrapper_attr(self, name: str) -> bool:
        """Whether this object or the served env has the attribute ``name``."""
        return hasattr(self, name)

    def set_wrapper_attr(self, name: str, value: Any, *, force: bool = True) -> bool:
        """Set ``name`` to ``value``: here if this object has it, else on the served env.

        Like Gymnasium's ``set_wrapper_attr``: an attribute of the remote env object itself
        (an instance or class attribute, such as ``timeout``) is set locally; anything else
        is set on the served env, through its wrappers (``env.set_wrapper_attr`` there).

        Args:
            name: The attribute's name.
            value: Its new value (data only: it is encoded, never pickled).
            force: With ``False``, set it only where it exists already.

        Returns:
            Whether it was set (always ``True`` with ``force``).

        Raises:
            NotAllowedError: The server refuses the name (``docs/protocol.md`` section 13.2:
                private, ``reset``/``step``/``close``, the contract, such as ``num_envs``),
                or does not offer remote attribute access. Nothing is sent then.
        """
        if self._is_local(name):
            setattr(self, name, value)
            return True
        channel = self._connected()
        _check(channel, P.OP_SET_ATTR, name, vector=False)
        if not force and not hasattr(self, name):
            return False
        channel.request(P.OP_SET_ATTR, name, value)
        return True


class Part(NamedTuple):
    """The endpoint behind sub-envs ``lo`` to ``hi`` of a vector env."""

    channel: Channel
    lo: int
    hi: int
    batched: bool
    """A vector endpoint (its replies hold one item per sub-env) or a single env."""


class VectorAttributes:
    """``get_attr``, ``set_attr`` and ``call`` of a remote vector env (a mixin).

    Each has the semantics of ``gymnasium.vector.SyncVectorEnv``'s, applied to the served
    sub-envs; requests to several endpoints are pipelined (sent to all, then collected).
    """

    num_envs: int
    _channel: Channel | None
    _fleet: Fleet | VectorFleet | None
    _check_idle: Callable[[], None]

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every sub-env (or read it, if it is not callable).

        Returns:
            One result per sub-env, in order.

        Raises:
            RemoteAttributeError: A sub-env has no attribute ``name``.
            NotAllowedError: ``name`` is private or ``reset``, ``step``, ``close``, or the
                server does not offer remote attribute access.
            RuntimeError: Between ``step_async`` and ``step_wait``.
        """
        return self._fan_out(P.OP_CALL, name, lambda part: (list(args), kwargs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Every sub-env's attribute ``name`` (``call(name)``, as in ``SyncVectorEnv``)."""
        return self._fan_out(P.OP_GET_ATTR, name, lambda part: ())

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set attribute ``name`` of every sub-env.

        Args:
            name: The attribute's name.
            values: One value per sub-env (a list or tuple of ``num_envs`` values), or any
                other value, given to every sub-env.

        Raises:
            ValueError: ``values`` is a list or tuple of the wrong length.
            NotAllowedError: The name is private, ``reset``, ``step``, ``close``, defines the
                contract, or the server does not offer remote attribute access.
            RuntimeError: Between ``step_async`` and ``step_wait``.
        """
        self._check_idle()
        if not isinstance(values, (list, tuple)):
            values = [values for _ in range(self.num_envs)]
        if len(values) != self.num_envs:
            raise ValueError(
                "Values must be a list or tuple with length equal to the number of "
                f"environments. Got `{len(values)}` values for {self.num_envs} environments.")
        items = list(values)
        self._fan_out(P.OP_SET_ATTR, name, lambda part: (
            items[part.lo:part.hi] if part.batched else items[part.lo],))

    def _parts(self) -> list[Part]:
        fleet = self._fleet
        if fleet is None:
            channel = self._channel
            if channel is None:
                raise RuntimeError("this vector env has no endpoint")
            return [Part(channel, 0, self.num_envs, True)]
        if isinstance(fleet, VectorFleet):
            return [Part(c, lo, hi, True) for c, (lo, hi) in zip(fleet.channels, fleet.bounds,
                                                                 strict=True)]
        return [Part(c, i, i + 1, False) for i, c in enumerate(fleet.channels)]

    def _fan_out(self, op: int, name: str, arguments: Callable[[Part], tuple[Any, ...]]
                 ) -> tuple[Any, ...]:
        """Send ``op`` for ``name`` to every endpoint, collect, join in sub-env order."""
        self._check_idle()
        parts = self._parts()
        for part in parts:
            _check(part.channel, op, name, vector=True)
        channels = [part.channel for part in parts]
        sent: list[int] = []
        try:
            for i, part in enumerate(parts):
                # A single-env endpoint reads an attribute as SyncVectorEnv does: call(name).
                part_op = P.OP_CALL if op == P.OP_GET_ATTR and not part.batched else op
                extra = ([], {}) if part_op != op else arguments(part)
                part.channel.submit(part_op, name, *extra)
                sent.append(i)
        except BaseException:
            with contextlib.suppress(RLMeshError):  # leave no reply unread
                gather(channels, sent)
            raise
        replies = gather(channels, sent)
        results: tuple[Any, ...] = ()
        if op != P.OP_SET_ATTR:
            for part, reply in zip(parts, replies, strict=True):
                results += tuple(reply[2]) if part.batched else (reply[2],)
        return results
