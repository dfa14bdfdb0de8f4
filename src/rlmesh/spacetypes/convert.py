"""Conversions between rlmesh spaces, plain Gymnasium spaces and specs."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces as gs

from rlmesh.spacetypes.spec import SpaceSpec, space_spec

__all__ = ["from_gymnasium_space", "space_from_spec", "to_gymnasium_space"]


def space_from_spec(spec: SpaceSpec, *, bridge: Any = None) -> gs.Space[Any]:
    """Build the rlmesh space a spec describes.

    Args:
        spec: A :class:`~rlmesh.spaces.SpaceSpec` (``space.spec``, ``env.env_contract``'s
            spaces, ``env.observation_space_spec``).
        bridge: Accepted for the reference's signature; the space is the same whatever it
            names (rlmesh spaces are Gymnasium spaces with numpy samples; values become
            tensors at the client boundary).

    Returns:
        An :mod:`rlmesh.spaces` space (a Gymnasium space) equal to the one described.

    Raises:
        TypeError: If ``spec`` is not a ``SpaceSpec``.
    """
    if not isinstance(spec, SpaceSpec):
        raise TypeError(f"space_from_spec takes a SpaceSpec, not a {type(spec).__qualname__}")
    del bridge
    return spec.to_space()


def from_gymnasium_space(space: gs.Space[Any]) -> gs.Space[Any]:
    """The rlmesh space equal to a Gymnasium space (children converted too).

    Raises:
        TypeError: If ``space`` is not a Gymnasium space rlmesh serves.
    """
    if not isinstance(space, gs.Space):
        raise TypeError(f"from_gymnasium_space takes a gymnasium space, not a "
                        f"{type(space).__qualname__}")
    return space_spec(space).to_space()


def to_gymnasium_space(space: gs.Space[Any] | SpaceSpec) -> gs.Space[Any]:
    """The plain ``gymnasium.spaces`` space equal to an rlmesh space or a spec.

    Raises:
        TypeError: If ``space`` is neither a Gymnasium space nor a ``SpaceSpec``.
    """
    if isinstance(space, SpaceSpec):
        return space.to_gym_space()
    if not isinstance(space, gs.Space):
        raise TypeError(f"to_gymnasium_space takes a space or a SpaceSpec, not a "
                        f"{type(space).__qualname__}")
    return space_spec(space).to_gym_space()
