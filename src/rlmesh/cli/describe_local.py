"""``rlmesh describe TARGET`` for a local target: its ``rlmesh.describe.v1`` envelope.

``rlmesh describe`` takes an endpoint address (what a server says about itself) or a local
target, told apart by form: ``host:port``, a bare port and ``scheme://...`` are addresses;
a registered env id and ``module:attr`` are local targets, described in this process
without serving anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from rlmesh.authoring.describe import describe_json
from rlmesh.cli.imports import import_attribute

__all__ = ["describe_local", "is_local_target", "local_object"]


def is_local_target(text: str) -> bool:
    """Whether ``text`` names a local target rather than an endpoint address."""
    if "://" in text or text.isdigit():
        return False
    if text in gym.registry:
        return True
    _, sep, port = text.rpartition(":")
    return not (sep and port.isdigit())


def local_object(target: str) -> Any:
    """What ``target`` names: an env id (as a string) or the object ``module:attr`` names.

    Raises:
        ValueError: If it names nothing (an unregistered id, a missing module or attribute).
    """
    if target in gym.registry:
        return target
    if ":" not in target:
        raise ValueError(f"{target!r} is neither a registered env id nor module:attr (nor "
                         "an endpoint address, host:port)")
    try:
        return import_attribute(target, "TARGET")
    except ValueError:
        env_id = target.partition(":")[2]
        if env_id in gym.registry:  # Gymnasium's module:EnvId (the module is imported)
            return env_id
        raise


def describe_local(target: str, out: str | None = None,
                   generated_at: str | None = None) -> str:
    """The envelope of ``target`` as canonical JSON, also written to ``out`` if given.

    Raises:
        ValueError: If the target names nothing describable, or ``generated_at`` is bad.
    """
    obj = local_object(target)
    try:
        text = describe_json(obj, generated_at=generated_at)
    except TypeError as exc:
        raise ValueError(f"{target!r}: {exc}") from None
    if out is not None:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return text
