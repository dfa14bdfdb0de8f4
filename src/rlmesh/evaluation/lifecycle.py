"""A model's episode edges and predict context, in both styles rlmesh accepts.

rlmesh's own models get ``reset(seed)`` when an episode *starts*. Models written for the
reference rlmesh get ``reset()`` (or ``reset(episode_id)``) when an episode *ends*, or the
``on_episode_end`` callback given to the constructor; locally an episode ends at the next
reset or when the run closes, exactly as the reference's local session does. Which style a
model speaks is read off its ``reset`` signature: a first parameter named ``seed`` is ours.

A predict callable or method whose parameters include one named ``context`` is handed a
:class:`PredictContext` on every call: the episode's id and seed, how many predicts the
episode has had, a reproducible per-predict seed, and a dict that lives as long as the
episode.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from typing import Any, Final, Literal, TypedDict

__all__ = ["EpisodeState", "PredictContext", "accepts_context", "anonymous_context", "call_edge",
           "predict_seed", "reset_edge"]

_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193
_ids = itertools.count()


class PredictContext(TypedDict):
    """What a predict that declares ``context`` is told about its episode."""

    episode_id: str
    episode_seed: int | None
    predict_index: int
    predict_seed: int | None
    state: dict[str, Any]
    step: int
    """The step the action is for (0-based; as ``predict_index`` when every step predicts)."""
    episode_seeds: list[int | None]
    """The seeds of the episodes this predict serves (one here; one per lane in a batch)."""


def predict_seed(episode_seed: int | None, predict_index: int) -> int | None:
    """A reproducible seed for one predict of a seeded episode (FNV-1a, 32 bits).

    ``None`` when the episode has no seed. The same law serves local and served drives.
    """
    if episode_seed is None:
        return None
    value = _FNV_OFFSET
    for byte in (episode_seed & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + \
            (predict_index & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"):
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def _parameters(function: Any) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []


def accepts_context(function: Any) -> bool:
    """Whether ``function`` (bound or plain) declares a parameter named ``context``."""
    return any(p.name == "context" for p in _parameters(function))


def reset_edge(reset: Callable[..., Any], default: Callable[..., Any]) -> Literal[
        "none", "start", "end"]:
    """When a model's ``reset`` fires: never (not overridden), at start (ours) or end.

    Args:
        reset: The model's ``reset``, unbound (the class attribute).
        default: The base class's ``reset`` (not overridden: ``"none"``).
    """
    if reset is default:
        return "none"
    params = [p for p in _parameters(reset)[1:]
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return "start" if params and params[0].name == "seed" else "end"


def call_edge(hook: Callable[..., Any], episode_id: str) -> None:
    """Call an episode-end hook with the episode's id if it takes one, else without."""
    params = [p for p in _parameters(hook)
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if params and params[0].name == "self":
        params = params[1:]
    hook(episode_id) if params else hook()


class EpisodeState:
    """The running episode of a model, as its predict context sees it."""

    def __init__(self, seed: int | None) -> None:
        self.episode_id = f"episode-{next(_ids)}"
        self.seed = seed
        self.predicts = 0
        self.state: dict[str, Any] = {}

    def context(self) -> PredictContext:
        """The context of the next predict (counts it)."""
        index = self.predicts
        self.predicts += 1
        return PredictContext(episode_id=self.episode_id, episode_seed=self.seed,
                              predict_index=index, predict_seed=predict_seed(self.seed, index),
                              state=self.state, step=index, episode_seeds=[self.seed])


def anonymous_context() -> PredictContext:
    """The context of a lane with no episode (an idle lane, or a served batch's row)."""
    return PredictContext(episode_id="", episode_seed=None, predict_index=0, predict_seed=None,
                          state={}, step=0, episode_seeds=[None])
