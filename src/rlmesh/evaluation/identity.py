"""What a run played on: the env's identity (id and spaces) and where the run was made.

``rlmesh.evaluate`` compares the identities of its endpoints before it plays, so that a mean
over endpoints never silently pools two different envs, and every saved run records what it
was played on, by which rlmesh, when and where.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from gymnasium import spaces as gs

from rlmesh.client.probe import probe
from rlmesh.errors import ConnectFailedError, RLMeshError
from rlmesh.protocol import LIBRARY_VERSION
from rlmesh.wire.schema import schema_to_space

__all__ = ["EnvIdentity", "probe_identities", "provenance"]


@dataclasses.dataclass(frozen=True)
class EnvIdentity:
    """An env's id (``None`` for an env without a spec) and its single-env spaces."""

    env_id: str | None
    observation_space: gs.Space[Any]
    action_space: gs.Space[Any]
    metadata: Mapping[str, Any] | None = dataclasses.field(default=None, compare=False)
    """The env's published metadata (where adapter tags travel)."""

    @classmethod
    def of_contract(cls, contract: dict[str, Any]) -> EnvIdentity:
        """The identity of what an endpoint serves (a vector endpoint: its sub-envs).

        Raises:
            ProtocolError: If the contract's spaces are malformed.
        """
        prefix = "single_" if contract.get("kind") == "vector_env" else ""
        spec = contract.get("spec")
        env_id = spec.get("id") if isinstance(spec, dict) else None
        metadata = contract.get("metadata")
        return cls(str(env_id) if env_id else None,
                   schema_to_space(contract[f"{prefix}observation_space"]),
                   schema_to_space(contract[f"{prefix}action_space"]),
                   metadata if isinstance(metadata, Mapping) else None)

    @classmethod
    def of_env(cls, env: Any) -> EnvIdentity:
        """The identity of an env or vector env object (local or remote)."""
        vector = hasattr(env, "single_action_space") and hasattr(env, "num_envs")
        spec = getattr(env, "spec", None)
        env_id = getattr(spec, "id", None)
        if vector:
            return cls(env_id, env.single_observation_space, env.single_action_space)
        return cls(env_id, env.observation_space, env.action_space)

    def matches(self, other: EnvIdentity) -> bool:
        """Whether both describe the same env.

        The spaces must be equal as Gymnasium compares them (bounds, dtypes and shapes
        included), and the ids equal where both have one (a served vector env, for one, often
        has no id).
        """
        if self.env_id and other.env_id and self.env_id != other.env_id:
            return False
        return bool(self.observation_space == other.observation_space
                    and self.action_space == other.action_space)

    def describe(self) -> str:
        """One line: ``CartPole-v1 (observations Box(...), actions Discrete(2))``."""
        name = self.env_id or "an env without an id"
        return f"{name} (observations {self.observation_space}, actions {self.action_space})"

    def settings(self) -> dict[str, Any]:
        """The keys a saved run records about its env."""
        return {"env_id": self.env_id, "observation_space": str(self.observation_space),
                "action_space": str(self.action_space)}


def provenance() -> dict[str, Any]:
    """Who made a run, when and where: rlmesh and Python versions, UTC time, host name."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"rlmesh_version": LIBRARY_VERSION, "python": platform.python_version(),
            "timestamp": now.isoformat(timespec="seconds"), "host": socket.gethostname()}


def probe_identities(addresses: Sequence[str | None], options: dict[str, Any],
                     identities: dict[str, EnvIdentity], errors: dict[str, str]) -> bool:
    """Probe every address once: fill ``identities`` (env endpoints) and ``errors`` (others).

    Args:
        addresses: The endpoints (``None``: a slot with no address yet, counted as starting).
        options: Keyword arguments of :func:`rlmesh.probe` (``timeout``, ``token``, ``tls``).
        identities: Filled with what each answering env endpoint serves.
        errors: Filled with why each other endpoint is not usable.

    Returns:
        Whether some endpoint may still be starting (refused, or no address yet).
    """
    starting = False
    for address in addresses:
        if address is None:
            starting = True
            continue
        try:
            contract = probe(address, **options)
        except ConnectFailedError as exc:
            errors[address], starting = str(exc), True
            continue
        except RLMeshError as exc:
            errors[address] = str(exc)
            continue
        kind = contract.get("kind")
        if kind is None:
            errors[address] = "requires a token (token= or RLMESH_TOKEN)"
        elif kind not in ("env", "vector_env"):
            errors[address] = f"serves a {kind!r} endpoint, not an env"
        else:
            identities[address] = EnvIdentity.of_contract(contract)
    return starting
