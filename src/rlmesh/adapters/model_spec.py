""":class:`ModelSpec`: the payload a model ingests and the action it emits, and its JSON.

The spec is pure data: ``input`` is a tree whose container type is the payload container
``predict`` receives (a ``dict``, a ``tuple`` or one bare leaf), ``output`` an
:class:`~rlmesh.adapters.Action`. It round-trips through the model_spec v1 document
(:meth:`ModelSpec.to_dict`, :meth:`ModelSpec.to_json`) and is published in a served model's
contract under :data:`~rlmesh.adapters.MODEL_METADATA_KEY`. Only host code cannot travel: a
:class:`~rlmesh.adapters.Custom` ``transform`` or a callable
:class:`~rlmesh.adapters.CustomEncoding` makes the spec local to its process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlmesh.adapters.action import Action, action_from_dict
from rlmesh.adapters.document import Document
from rlmesh.adapters.env_tags import _put
from rlmesh.adapters.model_leaves import (
    Concat,
    Custom,
    Image,
    ModelLeaf,
    State,
    Text,
    encoding_doc,
    encoding_from_doc,
)
from rlmesh.adapters.roles import MODEL_METADATA_KEY
from rlmesh.errors import AdapterSpecError

__all__ = ["InputNode", "ModelSpec", "ObservationRoles", "leaf_from_dict", "leaf_to_dict"]

InputNode = ModelLeaf | Mapping[str, Any] | tuple[Any, ...]
"""A model's input tree: a leaf, a ``dict`` of nodes or a ``tuple`` of nodes."""

_IMAGE_DEFAULTS = {name: getattr(Image(), name) for name in (
    "height", "width", "layout", "channels", "dtype", "normalize", "lead_dims", "upside_down",
    "resample", "allow_upscale", "fit", "optional", "fill", "stack", "offsets", "stack_pad",
    "crop", "crop_area", "channel_order")}
_PART_FIELDS = ("encoding", "dim", "index", "optional", "range", "fill", "scale", "offset",
                "frame")
_STATE_DEFAULTS = {"pad_to": None, "dtype": "float32", "reshape": None, "container": "array"}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _image_doc(leaf: Image) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "image", "role": leaf.role}
    for name, default in _IMAGE_DEFAULTS.items():
        value = getattr(leaf, name)
        if value != default:
            doc[name] = _jsonable(value)
    return doc


def _state_doc(leaf: State | Concat, where: str) -> dict[str, Any]:
    parts = []
    for part in leaf.parts:
        fields = {n: getattr(part, n) for n in _PART_FIELDS}
        fields["encoding"] = encoding_doc(part.encoding, where)
        fields["fill"] = fields["fill"] or None
        parts.append(_put({"role": part.role}, **fields))
    doc: dict[str, Any] = {"type": "state", "components": parts}
    for name, default in _STATE_DEFAULTS.items():
        if getattr(leaf, name) != default:
            doc[name] = _jsonable(getattr(leaf, name))
    return doc


def leaf_to_dict(leaf: Any, where: str = "input") -> dict[str, Any]:
    """The v1 JSON form of one model leaf.

    Raises:
        AdapterSpecError: For a leaf that holds host code (a callable ``Custom`` transform or
            ``CustomEncoding``), or something that is not a leaf.
    """
    if isinstance(leaf, Image):
        return _image_doc(leaf)
    if isinstance(leaf, (State, Concat)):
        return _state_doc(leaf, where)
    if isinstance(leaf, Text):
        return _put({"type": "text", "role": leaf.role},
                    container=None if leaf.container == "str" else leaf.container,
                    fill=leaf.fill)
    if isinstance(leaf, Custom):
        if leaf.entrypoint is None:
            raise AdapterSpecError(f"{where}: a Custom input with an in-process transform "
                                   "cannot be serialized (use entrypoint='module:callable')")
        return {"type": "custom", "entrypoint": leaf.entrypoint}
    raise AdapterSpecError(f"{where}: expected Image, State, Concat, Text or Custom, not "
                           f"{type(leaf).__qualname__}")


def _known(doc: Mapping[str, Any], allowed: set[str], where: str) -> dict[str, Any]:
    """``doc`` without extension keys (``x-``/``ext-``); any other unknown key is refused."""
    fields = {k: v for k, v in doc.items() if not str(k).startswith(("x-", "ext-"))}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise AdapterSpecError(f"{where}: unknown keys {', '.join(map(str, unknown))} (an "
                               "extension field is prefixed x- or ext-)")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def _part_from_dict(doc: Any, where: str) -> State:
    if not isinstance(doc, Mapping) or "role" not in doc:
        raise AdapterSpecError(f"{where}: a state component is an object with a role")
    fields = _known(doc, {"role", *_PART_FIELDS}, where)
    fields["encoding"] = encoding_from_doc(doc.get("encoding"), where)
    return State(**fields)


def leaf_from_dict(doc: Any, where: str = "input") -> Any:
    """Parse one model leaf from its v1 JSON form.

    Raises:
        AdapterSpecError: On an unknown type or key, or a bad value.
    """
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    if kind == "image":
        fields = _known(doc, {"type", "role", *_IMAGE_DEFAULTS}, where)
        return Image(**{k: v for k, v in fields.items() if k != "type"})
    if kind == "state":
        fields = _known(doc, {"type", "components", *_STATE_DEFAULTS}, where)
        items = doc.get("components")
        if not isinstance(items, list) or not items:
            raise AdapterSpecError(f"{where}: a state input needs a non-empty components list")
        parts = [_part_from_dict(item, f"{where}.components[{i}]") for i, item in
                 enumerate(items)]
        options = {k: v for k, v in fields.items() if k in _STATE_DEFAULTS}
        if len(parts) == 1:
            return State(**{**{n: getattr(parts[0], n) for n in ("role", *_PART_FIELDS)},
                            **options})
        return Concat(*parts, **options)
    if kind == "text":
        fields = _known(doc, {"type", "role", "container", "fill"}, where)
        return Text(**{k: v for k, v in fields.items() if k != "type"})
    if kind == "custom":
        fields = _known(doc, {"type", "entrypoint"}, where)
        if not isinstance(fields.get("entrypoint"), str) or fields["entrypoint"].startswith(
                "host:"):
            raise AdapterSpecError(f"{where}: a custom input carries a 'module:callable' "
                                   "entrypoint")
        return Custom(entrypoint=fields["entrypoint"])
    raise AdapterSpecError(f"{where}: unknown input type {kind!r}")


def _node_to_dict(node: Any, where: str) -> Any:
    if isinstance(node, Mapping):
        for key in node:
            if not isinstance(key, str):
                raise AdapterSpecError(f"{where}: payload keys are strings, not {key!r}")
        return {key: _node_to_dict(child, f"{where}[{key!r}]") for key, child in node.items()}
    if isinstance(node, tuple):
        return [_node_to_dict(child, f"{where}[{i}]") for i, child in enumerate(node)]
    return leaf_to_dict(node, where)


def _node_from_dict(doc: Any, where: str) -> Any:
    if isinstance(doc, list):
        return tuple(_node_from_dict(item, f"{where}[{i}]") for i, item in enumerate(doc))
    if not isinstance(doc, Mapping):
        raise AdapterSpecError(f"{where}: an input node is an object or a list, not {doc!r}")
    if isinstance(doc.get("type"), str):
        return leaf_from_dict(doc, where)
    return {key: _node_from_dict(child, f"{where}[{key!r}]") for key, child in doc.items()}


def _check_tree(node: Any, where: str = "input") -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            if not isinstance(key, str):
                raise AdapterSpecError(f"{where}: payload keys are strings, not {key!r}")
            _check_tree(child, f"{where}[{key!r}]")
    elif isinstance(node, tuple):
        for i, child in enumerate(node):
            _check_tree(child, f"{where}[{i}]")
    elif not isinstance(node, (Image, State, Concat, Text, Custom)):
        raise AdapterSpecError(f"{where}: expected Image, State, Concat, Text, Custom, a dict "
                               f"or a tuple, not {type(node).__qualname__}")


class ModelSpec(Document):
    """What a model ingests (``input``) and emits (``output``), by role."""

    metadata_key = MODEL_METADATA_KEY
    noun = "model spec"

    def __init__(self, input: InputNode, output: Action) -> None:
        """Declare a model's payload and action.

        Args:
            input: The payload tree: a ``dict`` (``predict`` gets a dict), a ``tuple`` or one
                bare leaf.
            output: The action vector the model emits.

        Raises:
            AdapterSpecError: If the tree holds something that is not a leaf, or ``output`` is
                not an :class:`~rlmesh.adapters.Action`.
        """
        _check_tree(input)
        if not isinstance(output, Action):
            raise AdapterSpecError(f"ModelSpec output must be an Action, not "
                                   f"{type(output).__qualname__}")
        self.input = input
        self.output = output

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ModelSpec) and other.input == self.input
                and other.output == self.output)

    def __hash__(self) -> int:
        return hash((repr(self.input), self.output))

    def __repr__(self) -> str:
        return f"ModelSpec(input={self.input!r}, output={self.output!r})"

    def leaves(self) -> list[tuple[str, Any]]:
        """Every leaf with its payload path (``'image'``, ``'[0]'``, ``''`` for a bare leaf)."""
        found: list[tuple[str, Any]] = []
        _walk(self.input, "", found)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The model_spec v1 JSON document.

        Raises:
            AdapterSpecError: If the spec holds host code that cannot be serialized.
        """
        return {"input": _node_to_dict(self.input, "input"), "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, doc: Any) -> ModelSpec:
        """Parse a model_spec v1 document.

        Raises:
            AdapterSpecError: If it is malformed.
        """
        if not isinstance(doc, Mapping) or set(doc) != {"input", "output"}:
            raise AdapterSpecError("a model_spec document is an object with exactly 'input' "
                                   "and 'output'")
        return cls(_node_from_dict(doc["input"], "input"), action_from_dict(doc["output"]))


def _walk(node: Any, path: str, found: list[tuple[str, Any]]) -> None:
    if isinstance(node, Mapping):
        for key, child in node.items():
            _walk(child, f"{path}.{key}" if path else key, found)
    elif isinstance(node, tuple):
        for i, child in enumerate(node):
            _walk(child, f"{path}[{i}]", found)
    else:
        found.append((path, node))


@dataclass(frozen=True)
class ObservationRoles:
    """The roles an observation offers, by kind (what a tagged env can feed a model).

    Attributes:
        images: The image roles.
        states: The numeric roles.
        texts: The text roles.
    """

    images: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    def __contains__(self, role: object) -> bool:
        return role in self.images or role in self.states or role in self.texts
