"""What the Ray cluster remembers of a named fleet, so other processes can find it.

A named fleet leaves a small record actor in Ray's ``rlmesh`` namespace, named after the
fleet. It holds the fleet's size, its servers' actor names, its placement group's name and
its token, which is how ``rlmesh eval --fleet NAME`` and ``rlmesh ray stop NAME`` in another
process reach the servers. The token is readable by anyone who can use the Ray cluster, as
everything in it is: Ray treats its cluster as one trusted box.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["NAMESPACE", "FleetRecord", "RecordKeeper", "server_name"]

NAMESPACE = "rlmesh"
"""The Ray namespace of every named fleet's actors."""


def server_name(fleet: str, index: int) -> str:
    """The actor name of server ``index`` of the fleet named ``fleet``."""
    return f"{fleet}/server-{index}"


@dataclasses.dataclass(frozen=True)
class FleetRecord:
    """A named fleet, as the cluster remembers it.

    Attributes:
        name: The fleet's name.
        num_servers: How many servers (slots) it has.
        token: The token its servers require (``None``: none).
        placement_group: The name of its placement group.
        env: A few words on what it serves.
        detached: Whether it outlives the process that started it.
    """

    name: str
    num_servers: int
    token: str | None
    placement_group: str
    env: str
    detached: bool


class RecordKeeper:
    """The body of the record actor: it only hands its record out."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = dict(record)

    def get(self) -> dict[str, Any]:
        """The record, as a dict of :class:`FleetRecord`'s fields."""
        return dict(self.record)
