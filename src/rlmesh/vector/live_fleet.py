"""Lanes that survive their server: a fleet of single-env endpoints that reconnects lost lanes.

``RemoteVectorEnv(addresses, reconnect=True)`` drives its single-env endpoints through a
:class:`LiveFleet`. When a lane's connection is lost (its server died: ``ConnectionLostError``),
the lane waits for its slot to serve again, at the slot's *current* address (an
:class:`~rlmesh.vector.endpoints.EndpointSet` follows a server restarted elsewhere; a plain
list retries the same address), with jittered exponential backoff bounded by
``reconnect_timeout``. The step then reports the lane as an autoreset would after a
truncation, so a learner's bookkeeping stays right:

* the lane's ``truncated`` is ``True``, its reward 0, its ``info`` holds
  ``rlmesh_lane_reconnected=True`` (with Gymnasium's ``_rlmesh_lane_reconnected`` mask);
* its observation is the last one the lost server sent (the episode's final observation as far
  as anyone knows). In ``NEXT_STEP`` mode the next step resets the lane on the new server, in
  ``SAME_STEP`` mode it is reset at once (the lost observation goes to ``final_obs``, and both
  the step's ``info`` and its ``final_info`` carry the flag), and in ``DISABLED`` mode the
  caller resets it, as after any truncation;
* a lane lost while it was resetting is reset on the new server with the same seed and options;
  only the flag marks it.

The other lanes step on undisturbed. A lane whose slot does not serve again in time raises
``ConnectionLostError`` (the env is unusable then, as without ``reconnect``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.client.options import ConnectOptions
from rlmesh.errors import ConnectFailedError, ConnectionLostError, EndpointKindError, RLMeshError
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.backoff import Backoff, pause
from rlmesh.vector.endpoints import EndpointSet
from rlmesh.vector.env_fleet import Fleet, InfoAdder
from rlmesh.wire.schema import schema_to_space

__all__ = ["LANE_RECONNECTED", "LiveFleet", "Reconnect"]

LANE_RECONNECTED = "rlmesh_lane_reconnected"
"""The ``info`` key set on a lane whose server was lost and which now runs on its successor."""


@dataclasses.dataclass(frozen=True)
class Reconnect:
    """How a :class:`LiveFleet` finds a lost lane's server again.

    Attributes:
        endpoints: Slot ``k`` is lane ``k``'s server.
        options: How to connect.
        timeout: Seconds a step may wait for a lost lane's slot to serve again (``None``: as
            long as it takes).
    """

    endpoints: EndpointSet
    options: ConnectOptions
    timeout: float | None


class LiveFleet(Fleet):
    """A :class:`~rlmesh.vector.env_fleet.Fleet` whose lost lanes reconnect (module docstring).

    Args:
        channels: One connected channel per lane.
        autoreset_mode: When finished sub-envs are reset.
        add_info: The vector env's ``_add_info``.
        reconnect: Where and how long to look for a lost lane's server.
    """

    def __init__(self, channels: Sequence[Channel], autoreset_mode: AutoresetMode,
                 add_info: InfoAdder, reconnect: Reconnect) -> None:
        super().__init__(channels, autoreset_mode, add_info)
        self.reconnect = reconnect
        self.reconnects = 0
        """Lanes reconnected so far."""
        self._sent: dict[int, tuple[int, tuple[Any, ...]]] = {}
        self._lost: dict[int, ConnectionLostError] = {}
        self._flag_reset: set[int] = set()
        """SAME_STEP lanes revived this step: the reset that follows carries the flag too."""

    def _submit(self, lane: int, op: int, *args: Any) -> None:
        self._sent[lane] = (op, args)
        try:
            self.channels[lane].submit(op, *args)
        except ConnectionLostError as exc:  # (found out when the replies are gathered)
            self._lost[lane] = exc

    def _gather(self, lanes: Sequence[int]) -> list[list[Any]]:
        limit = self.reconnect.timeout
        deadline = None if limit is None else time.monotonic() + limit
        replies: list[list[Any]] = []
        first_error: RLMeshError | None = None
        for lane in lanes:
            try:
                lost = self._lost.pop(lane, None)
                if lost is not None:
                    raise lost
                replies.append(self._flagged(lane, self.channels[lane].collect()))
            except ConnectionLostError as exc:
                try:
                    replies.append(self._revive(lane, exc, deadline))
                except RLMeshError as failed:
                    replies.append([])
                    first_error = first_error or failed
            except RLMeshError as exc:
                replies.append([])
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        return replies

    def _revive(self, lane: int, cause: ConnectionLostError,
                deadline: float | None) -> list[Any]:
        """Reconnect ``lane`` and make up the reply its lost request would have had."""
        op, args = self._sent.get(lane, (P.OP_STEP, ()))
        if op not in (P.OP_STEP, P.OP_RESET):
            raise cause
        channel = self._reconnect(lane, cause, deadline)
        self.channels[lane].abandon()
        self.channels[lane] = channel
        self.reconnects += 1
        if op == P.OP_RESET:
            reply = channel.request(P.OP_RESET, *args)
            return [*reply[:3], {**reply[3], LANE_RECONNECTED: True}]
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._flag_reset.add(lane)
        return [None, None, self._env_obs[lane], 0.0, False, True, {LANE_RECONNECTED: True}]

    def _flagged(self, lane: int, reply: list[Any]) -> list[Any]:
        """``reply``, flagged when it is the SAME_STEP reset of a lane revived this step."""
        if lane in self._flag_reset and self._sent.get(lane, (None,))[0] == P.OP_RESET:
            self._flag_reset.discard(lane)
            return [*reply[:3], {**reply[3], LANE_RECONNECTED: True}]
        return reply

    def _reconnect(self, lane: int, cause: ConnectionLostError,
                   deadline: float | None) -> Channel:
        """A channel to ``lane``'s slot once it serves again (backoff until ``deadline``)."""
        endpoints, backoff = self.reconnect.endpoints, Backoff()
        version = endpoints.version
        while True:
            addresses = endpoints.addresses
            address = addresses[lane] if lane < len(addresses) else None
            if address is not None:
                try:
                    return self._checked(Channel(address, self.reconnect.options, wait=False))
                except (ConnectFailedError, ConnectionLostError):
                    pass
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ConnectionLostError(
                    f"lane {lane} lost its endpoint ({cause}) and its slot did not serve again "
                    "within reconnect_timeout") from cause
            wait = backoff.next() if left is None else min(backoff.next(), left)
            version = pause(endpoints, version, wait)

    def _checked(self, channel: Channel) -> Channel:
        """``channel`` if it serves a single env with this fleet's spaces, else an error."""
        contract = channel.contract
        try:
            same = (contract.get("kind") == "env"
                    and schema_to_space(contract["observation_space"])
                    == self.single_observation_space
                    and schema_to_space(contract["action_space"]) == self.single_action_space)
        except (KeyError, TypeError, ValueError):
            same = False
        if not same:
            channel.close()
            raise EndpointKindError(f"{channel.address} came back serving another env than "
                                    "the lane it replaces; a lane must keep its spaces")
        return channel
