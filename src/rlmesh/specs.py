"""What an endpoint serves, as objects: :class:`EnvContract` and :class:`SpaceSpec`.

``EnvServer.env_contract``, ``RemoteEnv.env_contract`` and ``RemoteVectorEnv.env_contract``
(every face: ``rlmesh``, ``rlmesh.numpy``, ``rlmesh.torch``, ``rlmesh.jax``) return the
:class:`EnvContract` built from the contract the server sends in its handshake::

    contract = env.env_contract
    contract.id, contract.num_envs, contract.observation_space.kind
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlmesh.spacetypes.spec import SpaceSpec, space_spec
from rlmesh.wire.schema import schema_to_space

__all__ = ["UNKNOWN_ENV_ID", "EnvContract", "EnvContractView", "SpaceSpec"]

UNKNOWN_ENV_ID = "UnknownEnv-v1"
"""The ``id`` of an env that reports none (no ``env.spec``, or one without a string id)."""


class EnvContract:
    """An immutable description of an env endpoint.

    Attributes:
        id: The env's id (``env.spec.id``), or ``"UnknownEnv-v1"``.
        render_mode: The served render mode, or ``None``.
        num_envs: How many envs the endpoint serves (1 for a single env).
        metadata: The env's ``metadata``, or ``None`` when it has none.
        observation_space: The spec of one observation (of one sub-env for a vector env).
        action_space: The spec of one action (of one sub-env for a vector env).
    """

    __slots__ = ("_fields",)
    _fields: dict[str, Any]

    def __init__(self, *, id: str, observation_space: SpaceSpec, action_space: SpaceSpec,
                 num_envs: int = 1, render_mode: str | None = None,
                 metadata: Mapping[str, object] | None = None) -> None:
        """Build a contract; endpoints and remote envs build theirs for you."""
        object.__setattr__(self, "_fields", {
            "id": str(id), "render_mode": render_mode, "num_envs": int(num_envs),
            "metadata": None if metadata is None else dict(metadata),
            "observation_space": observation_space, "action_space": action_space})

    @classmethod
    def from_contract(cls, contract: Mapping[str, Any], *,
                      num_envs: int | None = None) -> EnvContract:
        """The contract of a handshake's contract map (``kind`` ``env`` or ``vector_env``).

        Args:
            contract: The contract map a server sends in its handshake.
            num_envs: The number of envs, if not the contract's (a vector env over many
                endpoints).

        Raises:
            ValueError: For a contract that does not describe an env.
        """
        kind = contract.get("kind")
        if kind not in ("env", "vector_env"):
            raise ValueError(f"a {kind!r} endpoint has no env contract")
        prefix = "single_" if kind == "vector_env" else ""
        spec = contract.get("spec")
        env_id = spec.get("id") if isinstance(spec, Mapping) else None
        render_mode = contract.get("render_mode")
        metadata = contract.get("metadata")
        return cls(
            id=env_id if isinstance(env_id, str) and env_id else UNKNOWN_ENV_ID,
            observation_space=space_spec(schema_to_space(contract[prefix + "observation_space"])),
            action_space=space_spec(schema_to_space(contract[prefix + "action_space"])),
            num_envs=int(contract.get("num_envs", 1)) if num_envs is None else num_envs,
            render_mode=render_mode if isinstance(render_mode, str) else None,
            metadata=metadata if isinstance(metadata, Mapping) and metadata else None,
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EnvContract is immutable")

    @property
    def id(self) -> str:
        """The env's id."""
        return str(self._fields["id"])

    @property
    def env(self) -> EnvContract:
        """This contract (the reference's alias)."""
        return self

    @property
    def spec(self) -> EnvContract:
        """This contract (the reference's alias)."""
        return self

    @property
    def render_mode(self) -> str | None:
        """The served render mode, or ``None``."""
        mode = self._fields["render_mode"]
        return mode if isinstance(mode, str) else None

    @property
    def num_envs(self) -> int:
        """How many envs the endpoint serves."""
        return int(self._fields["num_envs"])

    @property
    def metadata(self) -> dict[str, object] | None:
        """A copy of the env's metadata, or ``None``."""
        metadata = self._fields["metadata"]
        return None if metadata is None else dict(metadata)

    @property
    def observation_space(self) -> SpaceSpec:
        """The spec of one observation."""
        spec: SpaceSpec = self._fields["observation_space"]
        return spec

    @property
    def action_space(self) -> SpaceSpec:
        """The spec of one action."""
        spec: SpaceSpec = self._fields["action_space"]
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The contract as built-in values, the space specs as dictionaries."""
        out = dict(self._fields)
        out["observation_space"] = self.observation_space._to_dict()
        out["action_space"] = self.action_space._to_dict()
        out["metadata"] = self.metadata
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnvContract):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.id, self.num_envs, self.observation_space, self.action_space))

    def __repr__(self) -> str:
        return (f"EnvContract(id={self.id!r}, num_envs={self.num_envs}, "
                f"observation_space={self.observation_space!r}, "
                f"action_space={self.action_space!r}, render_mode={self.render_mode!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (dict(self._fields),))


def _rebuild(fields: dict[str, Any]) -> EnvContract:
    return EnvContract(**fields)


class EnvContractView:
    """The contract properties of an env endpoint or a remote env (a mixin).

    A class using it implements :meth:`_handshake_contract`; the :class:`EnvContract` is built
    once per contract map and kept.
    """

    __slots__ = ()

    def _handshake_contract(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def _contract_num_envs(self) -> int | None:
        return None

    @property
    def env_contract(self) -> EnvContract:
        """The :class:`EnvContract` of the env served here."""
        contract = self._handshake_contract()
        cached = self.__dict__.get("_env_contract_cache")
        if cached is None or cached[0] is not contract:
            cached = (contract, EnvContract.from_contract(
                contract, num_envs=self._contract_num_envs()))
            self.__dict__["_env_contract_cache"] = cached
        built: EnvContract = cached[1]
        return built

    @property
    def env_id(self) -> str:
        """The served env's id (``env_contract.id``)."""
        return self.env_contract.id

    @property
    def observation_space_spec(self) -> SpaceSpec:
        """The spec of one observation (``env_contract.observation_space``)."""
        return self.env_contract.observation_space

    @property
    def action_space_spec(self) -> SpaceSpec:
        """The spec of one action (``env_contract.action_space``)."""
        return self.env_contract.action_space
