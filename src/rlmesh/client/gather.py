"""Collecting pipelined replies from several channels (the endpoints of a fleet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlmesh.client.channel import Channel
from rlmesh.errors import RLMeshError

__all__ = ["gather"]


def gather(channels: Sequence[Channel], indices: Sequence[int]) -> list[list[Any]]:
    """Collect one pipelined reply per listed channel; raise the first error after all."""
    replies: list[list[Any]] = []
    first_error: RLMeshError | None = None
    for i in indices:
        try:
            replies.append(channels[i].collect())
        except RLMeshError as exc:
            replies.append([])
            if first_error is None:
                first_error = exc
                if hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(f"raised by endpoint {i} ({channels[i].address})")
    if first_error is not None:
        raise first_error
    return replies
