""":class:`Variant`: one named, concrete sub-environment of a factory's catalog.

``EnvFactory.enumerate_variants()`` returns (or yields) variants: already-bound entries with
an identity (``"libero_10/pick_up_the_black_bowl"``), the ``make()`` binding of only the
identity-defining parameters, and free-form display metadata (``name`` is the title).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Variant"]


class Variant:
    """A catalog entry: an id, its identity parameters, and display metadata.

    Args:
        id: A non-empty handle, unique within the factory; prefer a stable upstream
            identity to a positional index.
        params: The ``make()`` binding of the identity-defining parameters (copied, so one
            dict may be reused across entries).
        **metadata: Display metadata: ``name`` is the title, other keys pass through.

    Raises:
        ValueError: For an empty id.
        TypeError: For an id that is not a string or params that are not a mapping.
    """

    __slots__ = ("id", "metadata", "params")

    def __init__(self, id: str, params: Mapping[str, Any], /, **metadata: Any) -> None:
        if not isinstance(id, str):
            raise TypeError(f"a Variant id must be a string, not {type(id).__qualname__}")
        if not id:
            raise ValueError("a Variant id must not be empty")
        if not isinstance(params, Mapping):
            raise TypeError(f"Variant {id!r}: params must be a mapping, not "
                            f"{type(params).__qualname__}")
        self.id = id
        self.params: dict[str, Any] = dict(params)
        self.metadata: dict[str, Any] = dict(metadata)

    @property
    def name(self) -> str:
        """The display title (``metadata["name"]``, else the id)."""
        return str(self.metadata.get("name", self.id))

    def to_dict(self) -> dict[str, Any]:
        """The entry as ``{"id", "params", "metadata"}``."""
        return {"id": self.id, "params": dict(self.params), "metadata": dict(self.metadata)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Variant):
            return NotImplemented
        return (self.id, self.params, self.metadata) == (other.id, other.params,
                                                          other.metadata)

    def __hash__(self) -> int:
        return hash((Variant, self.id))

    def __repr__(self) -> str:
        extra = "".join(f", {key}={value!r}" for key, value in self.metadata.items())
        return f"Variant({self.id!r}, {self.params!r}{extra})"
