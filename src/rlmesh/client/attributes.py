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
* :func:`check_request`: what the server would refuse, answered without sending anything.

A vector env's ``get_attr``, ``set_attr`` and ``call`` are in :mod:`rlmesh.vector.attributes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.errors import EnvClosedError, NotAllowedError
from rlmesh.protocol.attributes import refusal

__all__ = ["RemoteAttributes", "RemoteMethod", "check_request", "offered"]

VECTOR_NAMES: Final = frozenset({"num_envs", "single_observation_space", "single_action_space"})
"""The vector API: a single env does not have it (probed with ``hasattr``, answered locally)."""


def offered(channel: Channel) -> bool:
    """Whether the server behind ``channel`` offers remote attribute access."""
    capabilities = channel.contract.get("capabilities")
    return isinstance(capabilities, list) and P.CAP_ATTRIBUTES in capabilities


def _not_offered(channel: Channel) -> NotAllowedError:
    return NotAllowedError(
        f"{channel.address} does not offer remote attribute access (the server runs with "
        "ServeOptions(remote_attributes=False))")


def check_request(channel: Channel, op: int, name: Any, *, vector: bool) -> None:
    """Raise what the server would answer, without sending anything."""
    why = refusal(op, name, vector=vector)
    if why is not None:
        raise NotAllowedError(why)
    if not offered(channel):
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
        if not offered(channel):
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
        check_request(channel, P.OP_CALL, name, vector=False)
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
        if not offered(channel):
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
        check_request(channel, P.OP_SET_ATTR, name, vector=False)
        if not force and not hasattr(self, name):
            return False
        channel.request(P.OP_SET_ATTR, name, value)
        return True
