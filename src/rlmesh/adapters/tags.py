""":class:`EnvTags`, the env_tags v1 document, and :func:`tag` (tags stamped on an env).

The document is plain JSON: ``{"observation": <node>, "action": <layout>}``. A node is a
list (a ``Tuple`` space), an object with a string ``"type"`` (a leaf), or any other object
(a ``Dict`` space). It travels in the contract metadata under
:data:`~rlmesh.adapters.ENV_METADATA_KEY`; a later format ships under a new key, so a reader
that finds only another version's key refuses it rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlmesh.adapters.action import Action, action_from_dict
from rlmesh.adapters.document import Document
from rlmesh.adapters.env_tags import (
    Field,
    ImageTag,
    Split,
    StateTag,
    TextTag,
    without_extensions,
)
from rlmesh.adapters.join import check_action, check_observation
from rlmesh.adapters.roles import ENV_METADATA_KEY
from rlmesh.errors import AdapterSpecError

__all__ = ["EnvTags", "tag"]

_LEAF_KEYS = {"image": {"role", "layout", "upside_down"}, "text": {"role"},
              "state": {"role", "encoding", "range", "frame"}, "split": {"fields"}}


def _tuple_or_none(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _leaf_from_dict(doc: Mapping[str, Any], where: str) -> Any:
    doc = without_extensions(doc)
    kind = doc["type"]
    if kind not in _LEAF_KEYS:
        raise AdapterSpecError(f"{where}: unknown leaf type {kind!r}")
    unknown = sorted(set(doc) - _LEAF_KEYS[kind] - {"type"})
    if unknown:
        raise AdapterSpecError(f"{where}: unknown {kind} keys: {', '.join(unknown)}")
    fields = {k: _tuple_or_none(v) for k, v in doc.items() if k != "type"}
    if kind == "image":
        return ImageTag(**fields)
    if kind == "text":
        return TextTag(**fields)
    if kind == "state":
        return StateTag(**fields)
    items = doc.get("fields")
    if not isinstance(items, list):
        raise AdapterSpecError(f"{where}: a split needs a fields list")
    return Split(*(_field_from_dict(item, where) for item in items))


def _field_from_dict(doc: Any, where: str) -> Field:
    known = {"role", "dim", "encoding", "range", "frame"}
    if isinstance(doc, Mapping):
        doc = without_extensions(doc)
    if not isinstance(doc, Mapping) or not set(doc) <= known or "dim" not in doc:
        raise AdapterSpecError(f"{where}: a split field is an object with a dim and only "
                               f"{', '.join(sorted(known))}, not {doc!r}")
    return Field(**{k: _tuple_or_none(v) for k, v in doc.items()})


def _node_from_dict(doc: Any, where: str = "observation") -> Any:
    if isinstance(doc, list):
        return tuple(_node_from_dict(item, f"{where}[{i}]") for i, item in enumerate(doc))
    if not isinstance(doc, Mapping):
        raise AdapterSpecError(f"{where}: an observation node is an object or a list, not "
                               f"{doc!r}")
    if "type" in doc:
        if not isinstance(doc["type"], str):
            raise AdapterSpecError(f"{where}: \"type\" is reserved for a leaf's kind (a "
                                   "string)")
        return _leaf_from_dict(doc, where)
    return {key: _node_from_dict(child, f"{where}[{key!r}]") for key, child in doc.items()}


def _node_to_dict(node: Any, where: str = "observation") -> Any:
    if isinstance(node, Mapping):
        out = {}
        for key, child in node.items():
            if not isinstance(key, str) or key == "type":
                raise AdapterSpecError(f"{where}: a tagged key must be a string other than "
                                       f"'type', not {key!r}")
            out[key] = _node_to_dict(child, f"{where}[{key!r}]")
        return out
    if isinstance(node, tuple):
        return [_node_to_dict(child, f"{where}[{i}]") for i, child in enumerate(node)]
    if isinstance(node, (ImageTag, StateTag, TextTag, Split)):
        return node.to_dict()
    raise AdapterSpecError(f"{where}: expected a dict, tuple, ImageTag, StateTag, TextTag or "
                           f"Split, not {type(node).__qualname__}")


class EnvTags(Document):
    """The semantic roles an env publishes over its observation and action spaces."""

    metadata_key = ENV_METADATA_KEY
    noun = "env tags"

    def __init__(self, observation: Any, action: Action) -> None:
        """Tag an env.

        Args:
            observation: The tagged observation tree: a ``dict`` (a ``Dict`` space, keys may
                be omitted), a ``tuple`` (a ``Tuple`` space) or one bare leaf.
            action: The action layout.

        Raises:
            AdapterSpecError: If the tree holds something that is not a tag, or ``action`` is
                not an :class:`Action`.
        """
        if not isinstance(action, Action):
            raise AdapterSpecError(f"EnvTags action must be an Action, not "
                                   f"{type(action).__qualname__}")
        self._observation_doc = _node_to_dict(observation)
        self.observation = observation
        self.action = action

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnvTags) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        return f"EnvTags(observation={self.observation!r}, action={self.action!r})"

    def to_dict(self) -> dict[str, Any]:
        """The env_tags v1 JSON document (plain dicts, lists, strings and numbers)."""
        return {"observation": self._observation_doc, "action": self.action.to_dict()}

    @classmethod
    def from_dict(cls, doc: Any) -> EnvTags:
        """Parse an env_tags v1 JSON document.

        Raises:
            AdapterSpecError: If it is malformed (a missing or unknown top-level key, an
                unknown leaf type or field, a bad value).
        """
        if not isinstance(doc, Mapping) or set(doc) != {"observation", "action"}:
            raise AdapterSpecError("an env_tags document is an object with exactly "
                                   "'observation' and 'action'")
        return cls(_node_from_dict(doc["observation"]), action_from_dict(doc["action"]))

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """Check the tags against an env's spaces (every tag must fit what it names).

        Raises:
            AdapterResolutionError: On the first tag that does not fit.
        """
        check_observation(self.observation, observation_space)
        check_action(self.action, action_space)


def tag(env: Any, tags: EnvTags, *, validate: bool = True) -> Any:
    """Stamp ``tags`` on ``env`` (its ``metadata``), so serving it publishes them.

    Args:
        env: A Gymnasium env (its ``observation_space``/``action_space`` are checked).
        tags: The env's tags.
        validate: Check the tags against the env's spaces first.

    Returns:
        ``env`` itself, with ``env.metadata`` carrying the tags document.

    Raises:
        AdapterSpecError: If ``tags`` is not :class:`EnvTags`.
        AdapterResolutionError: If ``validate`` and a tag does not fit the spaces.
    """
    if not isinstance(tags, EnvTags):
        raise AdapterSpecError(f"tag() needs EnvTags, not {type(tags).__qualname__}")
    if validate:
        tags.check_spaces(env.observation_space, env.action_space)
    metadata = dict(getattr(env, "metadata", None) or {})
    metadata.update(tags.to_metadata())
    env.metadata = metadata
    return env
