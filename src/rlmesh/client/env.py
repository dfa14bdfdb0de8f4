"""``RemoteEnv``: a ``gymnasium.Env`` whose reset, step and render run on an rlmesh server."""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import operator
import ssl
import threading
import warnings
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from rlmesh import protocol as P
from rlmesh.client.attributes import RemoteAttributes
from rlmesh.client.channel import DEFAULT, Channel, Default
from rlmesh.client.options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    ConnectOptions,
    connect_options,
    endpoint_address,
    spelled_timeouts,
)
from rlmesh.errors import (
    EndpointKindError,
    EnvClosedError,
    NotAllowedError,
    ProtocolError,
    RLMeshWarning,
)
from rlmesh.specs import EnvContractView
from rlmesh.wire.schema import schema_to_space

__all__ = ["RemoteEnv", "contract_metadata", "request_shutdown"]

log = logging.getLogger("rlmesh.client")


def contract_metadata(contract: dict[str, Any]) -> dict[str, Any]:
    """The env's ``metadata`` from a contract, ``render_modes`` cut to the served mode.

    A client cannot switch the served env's render mode, so it advertises only that one.
    """
    metadata = contract.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    render_mode = contract.get("render_mode")
    metadata["render_modes"] = [render_mode] if isinstance(render_mode, str) else []
    return metadata


def request_shutdown(request: Any, address: Any, reason: str | float | None,
                     timeout: float) -> bool:
    """Send SHUTDOWN through ``request``; what ``shutdown(reason)`` of a remote env returns.

    Args:
        request: The client's request function.
        address: The endpoint, for the log.
        reason: Why (the reference API's argument; it is logged here, not sent). Given, a
            refusal returns ``False``; omitted, it raises ``NotAllowedError``. A number is
            the ``timeout`` of rlmesh's older ``shutdown(timeout)``.
        timeout: Seconds allowed for the answer.

    Returns:
        ``True`` once the server has accepted (it then drains and stops).
    """
    if isinstance(reason, (int, float)) and not isinstance(reason, bool):
        timeout = float(reason)
        reason = None
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"reason must be a str, not {type(reason).__qualname__}")
    log.info("asking %s to shut down%s", address, f": {reason}" if reason else "")
    try:
        request(P.OP_SHUTDOWN, timeout=timeout)
    except NotAllowedError:
        if reason is None:
            raise
        return False
    return True


def _reconnect(cls: type[RemoteEnv], address: str, options: ConnectOptions,
               contract: dict[str, Any], render_mode: str | None = None) -> RemoteEnv:
    """Entry point of a RemoteEnv's spec: another session to the same endpoint.

    The new env knows the endpoint's contract already and opens its session on first use,
    so ``gymnasium.make(env.spec)`` followed by ``close()`` (as ``check_env`` does) costs no
    session, even against a busy single-instance endpoint.
    """
    served_mode = contract.get("render_mode")
    if render_mode is not None and render_mode != served_mode:
        raise ValueError(
            f"the endpoint {address} renders in mode {served_mode!r}; a client cannot choose "
            f"render_mode={render_mode!r}"
        )
    return cls(address, options=options, _contract=contract)


def _spec(env: RemoteEnv, options: ConnectOptions) -> EnvSpec | None:
    spec = env.contract.get("spec")
    if not isinstance(spec, dict) or not spec.get("id"):
        return None
    max_steps = spec.get("max_episode_steps")
    threshold = spec.get("reward_threshold")
    return EnvSpec(
        id=str(spec["id"]),
        entry_point=functools.partial(_reconnect, env._client_class(), env.address, options,
                                      env.contract),
        reward_threshold=float(threshold) if isinstance(threshold, (int, float)) else None,
        nondeterministic=bool(spec.get("nondeterministic", False)),
        max_episode_steps=max_steps if isinstance(max_steps, int) else None,
        # The served env already enforces its own API order and time limit.
        order_enforce=False,
        disable_env_checker=True,
    )


class RemoteEnv(EnvContractView, RemoteAttributes, gym.Env[Any, Any]):
    """A ``gymnasium.Env`` served by an rlmesh endpoint, with numpy values.

    Observations, rewards, flags and ``info`` arrive exactly as the served env produced
    them: numpy arrays keep their dtype and shape, numpy scalars stay numpy scalars, tuples
    stay tuples. Every array is owned by the caller and writable; rlmesh never reuses its
    memory. ``observation_space`` and ``action_space`` are Gymnasium spaces equal to the
    server's, so ``action_space.sample()`` and seeding behave as in Gymnasium.

    Args:
        address: ``"host:port"``, ``"tcp://host:port"`` or ``"unix:///path"``.
        host: TCP host, instead of ``address`` (with ``port``).
        port: TCP port, instead of ``address``.
        path: Unix socket path, instead of ``address``.
        transport: ``"tcp"`` or ``"unix"``: which kind ``host``/``port``/``path`` name.
        connect_timeout: Seconds allowed to connect and complete the handshake.
        timeout: Seconds allowed for each request (``None`` or ``math.inf`` disables the
            limit).
        connect_timeout_seconds: ``connect_timeout`` under the reference API's name.
        request_timeout_seconds: ``timeout`` under the reference API's name.
        max_message_bytes: Largest reply accepted.
        token: The endpoint's shared secret, if it requires one (default ``RLMESH_TOKEN``).
        tls: An ``ssl.SSLContext`` (see :func:`rlmesh.tls.client_context`) to connect over
            TLS, ``True`` for one trusting the system's CAs; a ``tls://`` address implies
            ``True``.
        options: A :class:`~rlmesh.ConnectOptions` instead of the keyword arguments above.

    Raises:
        ConnectFailedError: The endpoint cannot be reached.
        TypeError: No endpoint is named, or a limit is given under both of its names.
        ValueError: ``address`` is combined with the helpers, or they are incomplete.
        EnvBusyError: The endpoint's single env instance is in use by another client.
        VersionMismatchError: The server speaks another protocol version.

    One ``RemoteEnv`` is one connection; it is safe to use from any thread (calls are
    serialised), and one per thread is the way to drive endpoints in parallel.

    Gymnasium's escape hatches reach the served env (``docs/protocol.md`` section 13):
    ``env.unwrapped`` is this object, and a public name it does not have itself is looked up
    on the served env, through its wrappers, so ``env.unwrapped.x_threshold``,
    ``env.get_wrapper_attr("x_threshold")`` and ``env.unwrapped.get_action_meanings()`` work
    as on a local env (a method is a :class:`~rlmesh.client.attributes.RemoteMethod`; arguments and
    results travel as data). ``env.set_wrapper_attr("gravity", 5.0)`` changes the served env;
    a plain ``env.gravity = 5.0`` only sets an attribute on this object. A name the served env
    lacks raises ``RemoteAttributeError`` (an ``AttributeError``); names starting with ``_``
    never leave this process.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        transport: str | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout_seconds: float | None = None,
        request_timeout_seconds: float | None = None,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
        token: str | bytes | None = None,
        tls: ssl.SSLContext | bool | None = None,
        options: ConnectOptions | None = None,
        _contract: dict[str, Any] | None = None,
    ) -> None:
        self._channel: Channel | None = None
        self._warned_render = False
        address = endpoint_address(address, host, port, path, transport)
        connect_timeout, timeout = spelled_timeouts(
            connect_timeout, timeout, connect_timeout_seconds, request_timeout_seconds)
        options = connect_options(options, connect_timeout=connect_timeout, timeout=timeout,
                                  max_message_bytes=max_message_bytes, token=token, tls=tls)
        self._deferred: ConnectOptions | None = None
        """Connection options of an env whose session opens on first use (see _reconnect)."""
        if _contract is not None:
            self._define(address, _contract)
            self._deferred = options
            self._connecting = threading.Lock()
            self._request = self._request_deferred
            self._step = self._step_deferred
            self.address = address
        else:
            channel = Channel(address, options)
            try:
                self._define(address, channel.contract)
            except BaseException:
                channel.close()
                raise
            self._channel = channel
            self._request = channel.request
            self._step = channel.step
            self.address = str(channel.address)
        self.spec = _spec(self, options)

    def _handshake_contract(self) -> dict[str, Any]:
        return self.contract

    def _define(self, address: str, contract: dict[str, Any]) -> None:
        """Take the spaces, render mode and metadata from the endpoint's contract."""
        if contract.get("kind") == "vector_env":
            raise EndpointKindError(
                f"{address} serves a vector env of {contract.get('num_envs')} sub-envs: "
                f"use rlmesh.numpy.RemoteVectorEnv({address!r})"
            )
        if contract.get("kind") != "env":
            raise ProtocolError(f"{address} serves a {contract.get('kind')!r} endpoint")
        if "observation_space" not in contract or "action_space" not in contract:
            raise ProtocolError(f"{address} sent a contract without spaces")
        self.observation_space = schema_to_space(contract["observation_space"])
        self.action_space = schema_to_space(contract["action_space"])
        self.contract = contract
        render_mode = contract.get("render_mode")
        self.render_mode = render_mode if isinstance(render_mode, str) else None
        self.metadata = contract_metadata(contract)

    def _request_deferred(self, op: int, *args: Any,
                          timeout: float | Default | None = DEFAULT) -> list[Any]:
        """The first request of a deferred env: open the session, then send it."""
        return self._require().request(op, *args, timeout=timeout)

    def _step_deferred(self, action: Any, timeout: float | Default | None = DEFAULT
                       ) -> list[Any]:
        """The first step of a deferred env: open the session, then step."""
        return self._require().step(action, timeout=timeout)

    def _open_deferred(self, options: ConnectOptions) -> Channel:
        """Open the session of a deferred env; it must serve the env it was made for."""
        channel = Channel(self.address, options)
        fresh = channel.contract
        try:
            same = (fresh.get("kind") == "env" and "observation_space" in fresh
                    and "action_space" in fresh
                    and schema_to_space(fresh["observation_space"]) == self.observation_space
                    and schema_to_space(fresh["action_space"]) == self.action_space)
            if not same:
                raise EndpointKindError(f"{self.address} no longer serves the env this one "
                                        "was made from (its kind or spaces changed)")
        except BaseException:
            channel.close()
            raise
        self.contract = fresh
        return channel

    # -- the Gymnasium API ----------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None,
        timeout: float | Default | None = DEFAULT,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the remote env.

        Args:
            seed: Seed for the remote env's RNG (also seeds this object's ``np_random``).
            options: Passed to the remote env's ``reset``.
            timeout: Seconds allowed for this call instead of :attr:`timeout` (``None``: no
                limit).

        Returns:
            ``(observation, info)`` from the remote env.
        """
        if seed is not None:
            if not isinstance(seed, numbers.Integral):
                raise TypeError(f"seed must be an int or None, not {type(seed).__qualname__}")
            seed = int(seed)
        super().reset(seed=seed)
        reply = self._request(P.OP_RESET, seed, options, timeout=timeout)
        return reply[2], reply[3]

    def step(self, action: Any, *, timeout: float | Default | None = DEFAULT
             ) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the remote env with ``action``.

        Args:
            action: An element of :attr:`action_space`.
            timeout: Seconds allowed for this call instead of :attr:`timeout`.

        Raises:
            InvalidActionError: If ``action`` is not in :attr:`action_space` (the remote env
                does not see it and its state is unchanged).
            ResetNeededError: If :meth:`reset` was never called.
            RemoteEnvError: If the remote env raised.
            RLMeshTimeoutError: If no reply came in time (the session is then closed).
        """
        r = self._step(action, timeout)
        return r[2], r[3], r[4], r[5], r[6]

    def render(self, *, env_index: int = 0, timeout: float | Default | None = DEFAULT) -> Any:
        """Return the remote env's ``render()`` result (an rgb_array frame, or ``None``).

        An endpoint serving an env without a render mode renders nothing; the first such
        call warns here, on the client (Gymnasium's own warning goes to the server's log).

        Args:
            env_index: Which env to render; a single env has only index 0.
            timeout: Seconds allowed for this call instead of :attr:`timeout`.
        """
        if operator.index(env_index) != 0:
            raise IndexError(f"env_index {env_index} out of range: {self.address} serves "
                             "a single env (index 0)")
        frame = self._request(P.OP_RENDER, timeout=timeout)[2]
        if frame is None and self.render_mode is None and not self._warned_render:
            self._warned_render = True
            warnings.warn(f"{self.address} serves an env without a render mode, so render() "
                          "returns None: serve it with one (rlmesh serve ... --render-mode "
                          "rgb_array, or gym.make(..., render_mode='rgb_array'))",
                          RLMeshWarning, stacklevel=2)
        return frame

    def __getstate__(self) -> Any:
        """A remote env is a live connection: it cannot be pickled or deep-copied."""
        raise TypeError(f"{type(self).__qualname__} is a live connection to {self.address} and "
                        "cannot be pickled or copied; gymnasium.make(env.spec) makes another "
                        "env for the same endpoint")

    @property
    def timeout(self) -> float | None:
        """Seconds each request may take (``None``: no limit); settable."""
        if self._deferred is not None:
            return self._deferred.timeout
        return self._require().timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        if self._deferred is not None:
            self._deferred = self._deferred.replace(timeout=value)
            return
        self._require().set_timeout(value)

    def shutdown(self, reason: str | float | None = None, *, timeout: float = 10.0) -> bool:
        """Ask the server to shut down (drain, close its envs, stop), then close this env.

        Only a server run with ``ServeOptions(allow_remote_shutdown=True)`` agrees; a refused
        request leaves this env open and usable.

        Args:
            reason: Why, for the log (the reference API's form). With a reason a refusal
                returns ``False``; without one it raises ``NotAllowedError``. (A number
                here is ``timeout``, as rlmesh's earlier ``shutdown(timeout)`` took it.)
            timeout: Seconds allowed for the server's answer.

        Returns:
            ``True`` when the server accepted, ``False`` when it refused a request with a
            reason.

        Raises:
            NotAllowedError: The server refused a request without a reason.
        """
        if not request_shutdown(self._request, self.address, reason, timeout):
            return False
        self._require().abandon()
        return True

    def _client_class(self) -> type[RemoteEnv]:
        """The class of another session to this endpoint (``gymnasium.make(env.spec)``)."""
        return type(self)

    def close(self) -> None:
        """End the session (the server frees or closes its env). Idempotent."""
        self._deferred = None  # (a deferred env that was never used has nothing to end)
        channel = self._channel
        if channel is not None:
            channel.close()

    def ping(self, value: Any = None) -> Any:
        """Round-trip ``value`` through the server (a liveness check)."""
        return self._request(P.OP_PING, value)[2]

    # -- helpers --------------------------------------------------------------------------

    def _attribute_channel(self) -> Channel | None:
        """The session to read remote attributes through (a deferred env opens it now)."""
        if self._channel is None and self.__dict__.get("_deferred") is not None:
            return self._require()
        return self._channel

    def _require(self) -> Channel:
        if self._channel is None:
            options = self._deferred
            if options is None:
                raise EnvClosedError("this env is not connected")
            with self._connecting:
                if self._channel is None and self._deferred is not None:
                    self._channel = self._open_deferred(options)
                    self._request = self._channel.request
                    self._step = self._channel.step
                    self._deferred = None
            if self._channel is None:
                raise EnvClosedError("this env has been closed")
        return self._channel

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        if self._channel is None:
            return self._deferred is None
        return self._channel.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self._channel else "not connected yet"
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.address} {state}>"

    def __str__(self) -> str:
        return repr(self)

    def abandon(self) -> None:
        """Drop the connection without a goodbye, from any thread.

        A call in flight fails with ``ConnectionLostError``.
        """
        channel = getattr(self, "_channel", None)
        if channel is not None and not channel.closed:
            channel.abandon()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.abandon()

