"""``RemoteVectorEnv``: a ``gymnasium.vector.VectorEnv`` backed by rlmesh endpoints.

Three shapes, one class:

* ``RemoteVectorEnv("host:port")`` drives one **vector endpoint** (a server serving a
  Gymnasium vector env); batching and autoreset happen on the server.
* ``RemoteVectorEnv(["host:port", ...])`` drives many **single-env endpoints** (one machine or
  many) as one vector env from one thread, pipelined, with Gymnasium's autoreset semantics
  (:mod:`rlmesh.vector.env_fleet`).
* The same list form with **vector endpoints** (``rlmesh.make_vec``'s workers, say) steps them
  all at once and concatenates their lanes (:mod:`rlmesh.vector.vector_fleet`).
"""

from __future__ import annotations

import contextlib
import operator
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.client.env import contract_metadata, request_shutdown
from rlmesh.client.options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    ConnectOptions,
    connect_options,
    endpoint_address,
    spelled_timeouts,
)
from rlmesh.errors import EndpointKindError, ProtocolError
from rlmesh.specs import EnvContractView
from rlmesh.vector.async_api import AsyncStepping
from rlmesh.vector.async_step import AsyncStepper, check_batch_size
from rlmesh.vector.attributes import VectorAttributes
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.batching import expand_seeds
from rlmesh.vector.endpoints import EndpointSet, StaticEndpoints, current_addresses
from rlmesh.vector.env_fleet import Fleet
from rlmesh.vector.live_fleet import LiveFleet, Reconnect
from rlmesh.vector.vector_fleet import VectorFleet
from rlmesh.wire.schema import schema_to_space

__all__ = ["RemoteVectorEnv"]


def _mode(value: AutoresetMode | str | None) -> AutoresetMode | None:
    if value is None or isinstance(value, AutoresetMode):
        return value
    try:
        return AutoresetMode(value)
    except ValueError:
        names = ", ".join(m.value for m in AutoresetMode)
        raise ValueError(f"unknown autoreset mode {value!r} (one of {names})") from None


class RemoteVectorEnv(EnvContractView, VectorAttributes, AsyncStepping,
                      VectorEnv[Any, Any, Any]):
    """A Gymnasium vector env whose sub-envs run behind rlmesh endpoints.

    Args:
        address: One vector endpoint (``"host:port"``), or a sequence of single-env endpoint
            addresses to drive as one vector env.
        host: TCP host of one endpoint, instead of ``address`` (with ``port``).
        port: TCP port, instead of ``address``.
        path: Unix socket path, instead of ``address``.
        transport: ``"tcp"`` or ``"unix"``: which kind ``host``/``port``/``path`` name.
        autoreset_mode: For a sequence of endpoints: ``AutoresetMode.NEXT_STEP`` (default, as
            Gymnasium), ``SAME_STEP`` or ``DISABLED`` (or their string values). For a vector
            endpoint the served env decides; passing a different mode is an error.
        connect_timeout: Seconds to connect and handshake, per endpoint.
        timeout: Seconds allowed for each reply.
        connect_timeout_seconds: ``connect_timeout`` under the reference API's name.
        request_timeout_seconds: ``timeout`` under the reference API's name.
        max_message_bytes: Largest reply accepted.
        token: The endpoints' shared secret, if they require one (default ``RLMESH_TOKEN``).
        tls: An ``ssl.SSLContext`` (see :func:`rlmesh.tls.client_context`) to connect over
            TLS, ``True`` for one trusting the system's CAs; a ``tls://`` address implies
            ``True``.
        options: A :class:`~rlmesh.ConnectOptions` instead of the keyword arguments above.
        reconnect: For single-env endpoints: when a lane's server is lost, reconnect the
            lane to its slot's current address and report it as truncated with
            ``info["rlmesh_lane_reconnected"]``, instead of raising
            (:mod:`rlmesh.vector.live_fleet`). ``address`` may then be an
            :class:`~rlmesh.vector.endpoints.EndpointSet` that follows restarted servers.
        reconnect_timeout: Seconds a step waits for a lost lane's server to serve again
            (``None``: as long as it takes); then ``ConnectionLostError`` is raised.
        batch_size: Lanes each :meth:`recv` returns (EnvPool's async stepping with
            :meth:`async_reset`, :meth:`send` and :meth:`recv`; ``docs/async-stepping.md``);
            default ``num_envs``. ``step`` works either way.

    Raises:
        EndpointKindError: A single address serves a single env (use ``RemoteEnv``, or pass a
            list), or a list mixes single-env and vector endpoints. (A list of vector
            endpoints is joined into one larger vector env.)

    Observations, rewards and flags are numpy batches, fresh for every call. ``get_attr``,
    ``set_attr`` and ``call`` reach the served sub-envs with ``SyncVectorEnv``'s semantics.
    """

    def __init__(
        self,
        address: str | Sequence[str] | EndpointSet | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        transport: str | None = None,
        autoreset_mode: AutoresetMode | str | None = None,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout_seconds: float | None = None,
        request_timeout_seconds: float | None = None,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
        token: str | bytes | None = None,
        tls: ssl.SSLContext | bool | None = None,
        options: ConnectOptions | None = None,
        reconnect: bool = False,
        reconnect_timeout: float | None = 30.0,
        batch_size: int | None = None,
    ) -> None:
        mode = _mode(autoreset_mode)
        endpoints: EndpointSet | None = None
        if isinstance(address, EndpointSet):
            endpoints, address = address, current_addresses(address)
        if address is None or isinstance(address, str):
            address = endpoint_address(address, host, port, path, transport)
        elif host is not None or port is not None or path is not None or transport is not None:
            raise ValueError("pass either a list of addresses or host/port/path/transport, "
                             "not both")
        connect_timeout, timeout = spelled_timeouts(
            connect_timeout, timeout, connect_timeout_seconds, request_timeout_seconds)
        connect = connect_options(options, connect_timeout=connect_timeout, timeout=timeout,
                                  max_message_bytes=max_message_bytes, token=token, tls=tls)
        self._channel: Channel | None = None
        self._fleet: Fleet | VectorFleet | None = None
        self._step_pending = False
        self._owned: list[Any] = []
        self._async: AsyncStepper | None = None
        if isinstance(address, str):
            if reconnect:
                raise ValueError("reconnect=True needs a list of single-env endpoints (or an "
                                 "EndpointSet), not one vector endpoint")
            self._init_endpoint(address, mode, connect)
        else:
            addresses = list(address)
            if not addresses:
                raise ValueError("RemoteVectorEnv needs at least one address")
            live = (Reconnect(endpoints or StaticEndpoints(addresses), connect,
                              reconnect_timeout) if reconnect else None)
            self._init_fleet(addresses, mode or AutoresetMode.NEXT_STEP, mode is not None,
                             connect, live)
        try:
            self.batch_size = check_batch_size(batch_size, self.num_envs)
        except ValueError:
            self.close_extras()
            raise
        self.closed = False

    def _handshake_contract(self) -> dict[str, Any]:
        return self.contract

    def _contract_num_envs(self) -> int | None:
        return int(self.num_envs)

    def _init_endpoint(self, address: str, mode: AutoresetMode | None,
                       options: ConnectOptions) -> None:
        channel = Channel(address, options)
        try:
            contract = channel.contract
            if contract.get("kind") != "vector_env":
                raise EndpointKindError(
                    f"{address} serves a single env: use rlmesh.numpy.RemoteEnv({address!r}), "
                    f"or RemoteVectorEnv([{address!r}, ...]) to batch single-env endpoints"
                )
            self.num_envs = int(contract["num_envs"])
            self.observation_space = schema_to_space(contract["observation_space"])
            self.action_space = schema_to_space(contract["action_space"])
            self.single_observation_space = schema_to_space(contract["single_observation_space"])
            self.single_action_space = schema_to_space(contract["single_action_space"])
            self.metadata = contract_metadata(contract)
            served = _mode(self.metadata.get("autoreset_mode"))
            if served is not None:
                self.metadata["autoreset_mode"] = served
            if mode is not None and served is not None and mode != served:
                raise ValueError(f"{address} autoresets in mode {served.value}; it cannot be "
                                 f"driven in mode {mode.value}")
        except (KeyError, TypeError) as exc:
            channel.close()
            raise ProtocolError(f"{address} sent a malformed vector contract: {exc}") from exc
        except BaseException:
            channel.close()
            raise
        self.render_mode = contract.get("render_mode")
        self._channel = channel
        self.contract = contract
        self.address: str | list[str] = str(channel.address)

    def _connect(self, addresses: list[str], options: ConnectOptions
                 ) -> tuple[list[Channel], BaseException | None]:
        """A channel to every address (connected in parallel), and the first failure."""
        with ThreadPoolExecutor(min(len(addresses), 32)) as pool:
            futures = [pool.submit(Channel, a, options) for a in addresses]
        channels: list[Channel] = []
        error: BaseException | None = None
        for future in futures:
            try:
                channels.append(future.result())
            except BaseException as exc:
                error = error or exc
        return channels, error

    def _init_fleet(self, addresses: list[str], mode: AutoresetMode, explicit: bool,
                    options: ConnectOptions, live: Reconnect | None = None) -> None:
        channels, error = self._connect(addresses, options)
        try:
            if error is not None:
                raise error
            kinds = {channel.contract.get("kind") for channel in channels}
            if kinds == {"vector_env"} and live is not None:
                raise ValueError("reconnect=True works over single-env endpoints only")
            if kinds == {"vector_env"}:
                fleet: Fleet | VectorFleet = VectorFleet(channels)
                if explicit and mode != fleet.autoreset_mode:
                    raise ValueError(f"the endpoints autoreset in mode "
                                     f"{fleet.autoreset_mode.value}, not {mode.value}")
                mode = fleet.autoreset_mode
            elif kinds == {"env"}:
                fleet = (Fleet(channels, mode, self._add_info) if live is None
                         else LiveFleet(channels, mode, self._add_info, live))
            else:
                raise EndpointKindError(
                    "the addresses mix single-env and vector endpoints; list only single-env "
                    "endpoints, or only vector endpoints")
            self._fleet = fleet
        except BaseException:
            for channel in channels:
                channel.close()
            raise
        self.num_envs = fleet.num_envs
        self.single_observation_space = fleet.single_observation_space
        self.single_action_space = fleet.single_action_space
        self.observation_space = fleet.observation_space
        self.action_space = fleet.action_space
        contract = channels[0].contract
        self.metadata = contract_metadata(contract)
        self.metadata["autoreset_mode"] = mode
        self.render_mode = contract.get("render_mode")
        self.contract = contract
        self.address = [str(c.address) for c in channels]

    # -- the Gymnasium vector API -------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the sub-envs.

        Args:
            seed: ``None``, an int (sub-env ``i`` gets ``seed + i``), or one seed per sub-env.
            options: Passed to every sub-env's ``reset``; ``options["reset_mask"]`` (a bool
                array) resets only the masked sub-envs.

        Returns:
            Batched observations and infos (with Gymnasium's ``_key`` masks).
        """
        self._check_idle()
        if self._fleet is not None:
            return self._fleet.reset(seed, options)
        wire_seed: Any = seed
        if isinstance(seed, (int, np.integer)):
            wire_seed = int(seed)
        elif seed is not None:
            wire_seed = expand_seeds(seed, self.num_envs)
        reply = self._require().request(P.OP_RESET, wire_seed, options)
        return reply[2], reply[3]

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step every sub-env with its action; returns batched results."""
        if self._async is not None:  # (_check_async_idle, inline: the step's path)
            self._async.check_idle("step()")
        channel = self._channel
        if channel is not None and not self._step_pending:  # one endpoint: one round trip
            r = channel.step(actions)
            return r[2], r[3], r[4], r[5], r[6]
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: Any) -> None:
        """Send the actions and return at once; :meth:`step_wait` collects the results."""
        self._check_idle()
        if self._fleet is not None:
            self._fleet.step_async(actions)
        else:
            self._require().submit(P.OP_STEP, actions)
        self._step_pending = True

    def step_wait(self) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Wait for the results of :meth:`step_async`."""
        if not self._step_pending:
            raise RuntimeError("step_wait() without step_async()")
        self._step_pending = False
        if self._fleet is not None:
            return self._fleet.step_wait()
        r = self._require().collect()
        return r[2], r[3], r[4], r[5], r[6]

    def render(self, *, env_index: int | None = None) -> Any:
        """The sub-envs' frames (what the served vector env's ``render`` returns).

        Args:
            env_index: Only this sub-env's frame (``None``: all of them, as Gymnasium's
                ``VectorEnv.render``).
        """
        self._check_idle()
        index = None if env_index is None else operator.index(env_index)
        if index is not None and not 0 <= index < self.num_envs:
            raise IndexError(f"env_index {env_index} out of range for {self.num_envs} "
                             "sub-envs")
        frames = (self._fleet.render() if self._fleet is not None
                  else self._require().request(P.OP_RENDER)[2])
        return frames if index is None or frames is None else frames[index]

    def shutdown(self, reason: str | float | None = None, *, timeout: float = 10.0) -> bool:
        """Ask every endpoint to shut down, then close this env (as ``RemoteEnv.shutdown``).

        Args:
            reason: Why, for the log; with a reason a refusal returns ``False``, without one
                it raises ``NotAllowedError``.
            timeout: Seconds allowed for each server's answer.

        Returns:
            ``True`` when every endpoint accepted (this env is closed then).
        """
        self._check_idle()
        channels = [self._channel] if self._channel is not None else []
        if self._fleet is not None:
            channels.extend(self._fleet.channels)
        accepted = [request_shutdown(c.request, c.address, reason, timeout) for c in channels]
        if not all(accepted):
            return False
        for channel in channels:
            channel.abandon()  # (the servers are going away: no goodbye)
        self.close()
        return True

    def close_extras(self, **kwargs: Any) -> None:
        """End the sessions (their servers free or close the envs)."""
        self._close_async()
        if self._fleet is not None:
            self._fleet.close()
        if self._channel is not None:
            self._channel.close()
        for resource in reversed(self._owned):
            resource.close()
        self._owned.clear()

    def __enter__(self) -> RemoteVectorEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def attach(self, resource: Any) -> None:
        """Close ``resource`` (anything with ``close()``) when this env closes."""
        self._owned.append(resource)

    @property
    def workers(self) -> Any:
        """The local worker pool of an env built by :func:`rlmesh.make_vec`, else ``None``."""
        from rlmesh.server.workers import WorkerPool

        return next((r for r in self._owned if isinstance(r, WorkerPool)), None)

    # -- helpers ------------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self._step_pending:
            raise RuntimeError("call step_wait() before anything else after step_async()")
        self._check_async_idle("a synchronous call")

    def _require(self) -> Channel:
        if self._channel is None:
            raise ProtocolError("this RemoteVectorEnv has no vector endpoint")
        return self._channel

    def __repr__(self) -> str:
        return f"<RemoteVectorEnv {self.address} num_envs={self.num_envs}>"

    def abandon(self) -> None:
        """Drop every connection without a goodbye, from any thread.

        A call in flight fails with ``ConnectionLostError``.
        """
        channels = [self._channel] if self._channel is not None else []
        if self._fleet is not None:
            channels.extend(self._fleet.channels)
        for channel in channels:
            if not channel.closed:
                channel.abandon()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.abandon()
