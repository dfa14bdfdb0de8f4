"""Structural types: what rlmesh accepts as an env, a space or a value, for type checkers.

These protocols and aliases let code that hands envs and values to rlmesh state what it hands
over (the protocols also work with ``isinstance``, which checks that the names exist)::

    from rlmesh.types import EnvLike

    def serve_it(env: EnvLike[Any, Any]) -> None:
        rlmesh.EnvServer(env, "127.0.0.1:0").serve()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Protocol,
    SupportsFloat,
    TypeAlias,
    TypeVar,
    Union,
    runtime_checkable,
)

import numpy as np

if TYPE_CHECKING:
    from rlmesh.specs import EnvContract

__all__ = [
    "EnvLike",
    "EnvTarget",
    "HasAddress",
    "HasEnvContract",
    "InfoDict",
    "LocalEnvTarget",
    "Metadata",
    "PrimitiveValue",
    "SpaceLike",
    "SpecArg",
    "SupportsMake",
    "SupportsResetStep",
    "Value",
    "VectorEnvLike",
    "ViewArg",
]

PrimitiveValue: TypeAlias = bool | int | float | str | bytes | None
"""A leaf value that is not an array."""

Value: TypeAlias = Union[PrimitiveValue, "np.ndarray[Any, Any]", list["Value"],
                         tuple["Value", ...], dict[str, "Value"]]
"""A value rlmesh carries: a leaf, a numpy array, or lists, tuples and string-keyed dicts
of values."""

Metadata: TypeAlias = Mapping[str, object]
"""A metadata mapping (an env's ``metadata``, a contract's); values are ``object`` so
readers narrow them."""

InfoDict: TypeAlias = dict[str, Any]
"""The ``info`` of ``reset`` and ``step``: the env's own, so its values are ``Any``."""

SampleT = TypeVar("SampleT", covariant=True)
ObsT = TypeVar("ObsT", covariant=True)
ActT = TypeVar("ActT")
BatchActT = TypeVar("BatchActT", contravariant=True)
SingleObsT = TypeVar("SingleObsT", covariant=True)
SingleActT = TypeVar("SingleActT", covariant=True)


@runtime_checkable
class SpaceLike(Protocol[SampleT]):
    """Anything that samples, checks and seeds like a Gymnasium space."""

    def sample(self) -> SampleT:
        """One member of the space."""
        ...

    def contains(self, value: Any, /) -> bool:
        """Tell whether ``value`` is a member."""
        ...

    def seed(self, seed: int | None = None) -> Any:
        """Seed the sampler and return the seed or seeds used."""
        ...


@runtime_checkable
class EnvLike(Protocol[ObsT, ActT]):
    """A single env with the Gymnasium API, as ``EnvServer`` serves it."""

    @property
    def observation_space(self) -> SpaceLike[ObsT]:
        """The space of observations."""
        ...

    @property
    def action_space(self) -> SpaceLike[ActT]:
        """The space of actions."""
        ...

    def reset(self, *, seed: int | None = None,
              options: InfoDict | None = None) -> tuple[ObsT, InfoDict]:
        """Start an episode."""
        ...

    def step(self, action: ActT) -> tuple[ObsT, SupportsFloat, bool, bool, InfoDict]:
        """Take one action."""
        ...

    def close(self) -> None:
        """Release the env."""
        ...


@runtime_checkable
class VectorEnvLike(Protocol[BatchActT, SingleObsT, SingleActT]):
    """A vector env with the Gymnasium API, as ``EnvServer`` serves it."""

    @property
    def num_envs(self) -> int:
        """How many sub-envs it steps."""
        ...

    @property
    def single_observation_space(self) -> SpaceLike[SingleObsT]:
        """The space of one sub-env's observations."""
        ...

    @property
    def single_action_space(self) -> SpaceLike[SingleActT]:
        """The space of one sub-env's actions."""
        ...

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: InfoDict | None = None) -> tuple[Any, InfoDict]:
        """Start every sub-env's episode."""
        ...

    def step(self, actions: BatchActT) -> tuple[Any, Any, Any, Any, InfoDict]:
        """Take one batch of actions."""
        ...

    def close(self) -> None:
        """Release the sub-envs."""
        ...


@runtime_checkable
class HasAddress(Protocol):
    """Anything with an endpoint ``address`` to dial (an ``EnvServer``)."""

    @property
    def address(self) -> str:
        """The endpoint's address."""
        ...


@runtime_checkable
class HasEnvContract(Protocol):
    """Anything with an ``env_contract`` (an ``EnvServer``, a remote env)."""

    @property
    def env_contract(self) -> EnvContract:
        """The env's contract."""
        ...


@runtime_checkable
class SupportsResetStep(Protocol):
    """Anything with ``reset`` and ``step`` callables: a live env."""

    @property
    def reset(self) -> Callable[..., Any]:
        """The reset callable."""
        ...

    @property
    def step(self) -> Callable[..., Any]:
        """The step callable."""
        ...


@runtime_checkable
class SupportsMake(Protocol):
    """Anything with a ``make`` callable: an env factory."""

    @property
    def make(self) -> Callable[..., Any]:
        """The make callable."""
        ...


LocalEnvTarget: TypeAlias = SupportsResetStep | SupportsMake | HasAddress | str
"""What can be driven from this process: a live env, a factory, something with an address,
or an address."""

EnvTarget: TypeAlias = LocalEnvTarget | HasEnvContract
"""A :data:`LocalEnvTarget`, or anything with an ``env_contract``."""

SpecArg: TypeAlias = Any
"""A model's adapter spec argument (rlmesh has no adapter specs yet: any value)."""

ViewArg: TypeAlias = str | bool | object | None
"""A ``view=`` argument: a viewer, a shorthand string, ``True`` or ``None``."""
