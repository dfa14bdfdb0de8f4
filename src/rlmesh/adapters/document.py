"""The versioned documents :class:`~rlmesh.adapters.EnvTags` and ``ModelSpec`` both are.

What they share: their JSON text and their place in a contract's metadata.

Each is a versioned document under one metadata key (``rlmesh.adapters.v1.env_tags``,
``rlmesh.adapters.v1.model_spec``). A later format ships under a new key, so a reader that
finds only another version's key refuses it rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from rlmesh.errors import AdapterSpecError

__all__ = ["Document", "load_json"]

D = TypeVar("D", bound="Document")


def load_json(text: str | bytes) -> Any:
    """Parse a JSON adapter document (``NaN`` and infinities refused).

    Raises:
        AdapterSpecError: If it is not valid JSON.
    """
    def refuse(name: str) -> Any:
        raise AdapterSpecError(f"non-finite number {name} in an adapter document")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise AdapterSpecError(f"not a JSON adapter document: {exc}") from exc


class Document:
    """A versioned adapter document: ``to_dict``/``from_dict`` give the rest."""

    metadata_key: ClassVar[str]
    """The contract-metadata key of this format version."""
    noun: ClassVar[str]
    """What it is called in messages."""

    def to_dict(self) -> dict[str, Any]:
        """The document as plain JSON values."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[D], doc: Any) -> D:
        """Parse the document."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The document as canonical JSON (sorted keys; non-finite numbers refused)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)

    @classmethod
    def from_json(cls: type[D], text: str | bytes) -> D:
        """Parse :meth:`to_json` output.

        Raises:
            AdapterSpecError: If it is not valid JSON or not a valid document.
        """
        return cls.from_dict(load_json(text))

    def to_metadata(self) -> dict[str, Any]:
        """The contract-metadata entries that publish it."""
        return {self.metadata_key: self.to_dict()}

    @classmethod
    def from_metadata(cls: type[D], metadata: Mapping[str, Any]) -> D | None:
        """The document in a contract's metadata, or ``None`` when there is none.

        Raises:
            AdapterSpecError: If it is malformed, or only another format version's key is
                present.
        """
        doc = metadata.get(cls.metadata_key)
        if doc is not None:
            return cls.from_dict(doc)
        suffix = cls.metadata_key.rsplit(".", 1)[-1]
        versioned = re.compile(rf"^rlmesh\.adapters\.(v\d+)\.{re.escape(suffix)}$")
        for key in metadata:
            match = versioned.match(str(key))
            if match:
                raise AdapterSpecError(f"{cls.noun} in format {match.group(1)} ({key!r}); "
                                       f"this rlmesh reads {cls.metadata_key!r} only")
        return None
