"""Adapters: :class:`AdapterBase` (the escape hatch) and :class:`Adapter` (what resolve builds).

An adapter turns an env observation into the model's payload (:meth:`transform_obs`) and the
model's action into the env's (:meth:`transform_action`); :meth:`wrap_predict` makes a
``predict`` written in the model's format take env observations. A resolved :class:`Adapter`
is stateless unless a camera input stacks frames; then it keeps one window per vector lane
(``env_index``), cleared by :meth:`reset`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

from rlmesh.adapters.advisory import Advisory

__all__ = ["Adapter", "AdapterBase", "Plan", "Stack"]

ActionT = TypeVar("ActionT")
OMIT = object()
"""What a text slot gives when its text is absent and it has no fill (the slot is left out)."""


class AdapterBase(ABC, Generic[ActionT]):
    """The interface every adapter has; subclass it for logic a spec cannot express.

    Override :meth:`transform_obs` and :meth:`transform_action`; override :meth:`reset` to
    clear episode state (the runners call it at every episode boundary). The usual shape
    wraps a resolved :class:`Adapter` and adds only the stateful part.
    """

    @abstractmethod
    def transform_obs(self, raw_obs: Any) -> Any:
        """An env observation as the model's payload."""

    @abstractmethod
    def transform_action(self, raw_action: Any) -> ActionT:
        """The model's action as the env's."""

    def wrap_predict(self, predict: Callable[[Any], Any]) -> Callable[[Any], ActionT]:
        """``predict`` (model format in and out) as a function of env observations.

        The function carries this adapter as its ``adapter`` attribute, so a spec-less
        ``Model(adapter.wrap_predict(fn))`` is known to take a tagged env's raw observations.
        """
        def adapted(observation: Any) -> ActionT:
            return self.transform_action(predict(self.transform_obs(observation)))

        adapted.__name__ = getattr(predict, "__name__", "predict")
        adapted.adapter = self  # type: ignore[attr-defined]  # (it takes env observations)
        return adapted

    def reset(self, env_index: int | None = None) -> None:
        """Clear episode state (of one lane, or of all with ``None``); a no-op by default."""

    @property
    def is_stateful(self) -> bool:
        """Whether the adapter keeps state between steps (a custom one is assumed to)."""
        return True

    def advisories(self) -> list[Advisory]:
        """Non-fatal notes on what the adapter does (none for a custom adapter)."""
        return []

    def explain(self) -> str:
        """What the adapter does, in words."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        return f"custom adapter {type(self).__qualname__}" + (f": {doc[0]}" if doc else "")

    def describe(self) -> str:
        """The same as :meth:`explain` (the reference rlmesh's name)."""
        return self.explain()


class Stack:
    """A frame-history window for one camera input, one deque per vector lane."""

    def __init__(self, offsets: tuple[int, ...], pad: str, pad_frame: Callable[[], Any]) -> None:
        self.offsets = offsets
        self.span = 1 - offsets[0]
        self._pad = pad
        self._pad_frame = pad_frame
        self._lanes: dict[int, deque[Any]] = {}

    def push(self, frame: np.ndarray, lane: int) -> np.ndarray:
        """Add the lane's newest processed frame; the gathered window, oldest first."""
        window = self._lanes.get(lane)
        if window is None:
            window = self._lanes[lane] = deque(maxlen=self.span)
            fill = frame if self._pad == "first" else self._pad_frame()
            window.extend([fill] * (self.span - 1))
        window.append(frame)
        frames = list(window)
        return np.stack([frames[self.span - 1 + o] for o in self.offsets])

    def clear(self, lane: int | None) -> None:
        """Forget a lane's window (every lane's with ``None``)."""
        if lane is None:
            self._lanes.clear()
        else:
            self._lanes.pop(lane, None)


class Plan:
    """Everything :func:`~rlmesh.adapters.resolve` decided: the compiled payload and action.

    Attributes:
        build: ``(observation, lane) -> payload``.
        action: ``model_action -> env_action``.
        lines: The explain() text.
        advisories: Non-fatal notes.
        spec: The model spec it came from.
        tags: The env tags it came from.
    """

    def __init__(self, build: Callable[[Any, int], Any], action: Callable[[Any], Any],
                 lines: list[str], advisories: list[Advisory], spec: Any, tags: Any) -> None:
        self.build, self.action = build, action
        self.lines, self.advisories = lines, advisories
        self.spec, self.tags = spec, tags
        self.instruction: str | None = None


class Adapter(AdapterBase[Any]):
    """A resolved adapter between one env's tags and one model's spec.

    Built by :func:`~rlmesh.adapters.resolve` (or :func:`~rlmesh.adapters.resolve_from_contract`),
    not by hand.

    Args:
        plan: What resolution decided.
        customs: The custom inputs' loaded callables, by payload key.
        stacks: The frame-history windows, by payload key.
        obs_enc_shims: Observation-side CustomEncoding repacks, by payload key.
        action_enc_shims: Action-side CustomEncoding repacks, by role.
    """

    def __init__(self, plan: Plan, customs: Mapping[str, Callable[[Any], Any]],
                 stacks: Mapping[str, Stack] | None = None,
                 obs_enc_shims: Mapping[str, Any] | None = None,
                 action_enc_shims: Mapping[str, Any] | None = None) -> None:
        self._plan = plan
        self.customs = dict(customs)
        self.stacks = dict(stacks or {})
        self.obs_enc_shims = dict(obs_enc_shims or {})
        self.action_enc_shims = dict(action_enc_shims or {})

    @property
    def spec(self) -> Any:
        """The model spec this adapter serves."""
        return self._plan.spec

    @property
    def tags(self) -> Any:
        """The env tags it was resolved against."""
        return self._plan.tags

    @property
    def instruction(self) -> str | None:
        """Text given to the model's ``text/instruction`` inputs instead of the env's."""
        return self._plan.instruction

    @instruction.setter
    def instruction(self, text: str | None) -> None:
        if text is not None and not isinstance(text, str):
            raise TypeError(f"an instruction is a string, not {type(text).__qualname__}")
        self._plan.instruction = text

    def transform_obs(self, raw_obs: Any, *, env_index: int = 0) -> Any:
        """An env observation as the model's payload (``env_index``: the vector lane)."""
        return self._plan.build(raw_obs, env_index)

    def transform_action(self, raw_action: Any) -> Any:
        """The model's action as the env's action (a flat array of the env's dtype).

        Raises:
            TypeError: If the action is not a flat array of numbers.
            ValueError: If its length is not the spec's output width.
        """
        return self._plan.action(raw_action)

    def reset(self, env_index: int | None = None) -> None:
        """Clear the frame histories (of lane ``env_index``, or of every lane)."""
        for stack in self.stacks.values():
            stack.clear(env_index)

    @property
    def is_stateful(self) -> bool:
        """Whether a camera input stacks frames (the only state a resolved adapter keeps)."""
        return bool(self.stacks)

    def advisories(self) -> list[Advisory]:
        """What resolution chose that loses data or could not be confirmed."""
        return list(self._plan.advisories)

    def explain(self) -> str:
        """Every transform resolution chose, one line each, grouped by side."""
        text = "\n".join(self._plan.lines)
        if self._plan.advisories:
            text += "\nadvisories:\n" + "\n".join(
                f"  [{note.level}] {note}" for note in self._plan.advisories)
        return text

    def __repr__(self) -> str:
        return f"<Adapter {len(self._plan.lines)} lines, stateful={self.is_stateful}>"
