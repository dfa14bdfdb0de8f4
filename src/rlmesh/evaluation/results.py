"""What an evaluation produces: one ``EpisodeResult`` per episode, gathered in a ``RunResult``.

Both are plain dataclasses that round-trip through JSON (``to_dict``/``from_dict``,
``RunResult.save``/``RunResult.load``), so a run can be saved, reloaded and plotted later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["FORMAT", "EpisodeResult", "RunResult", "success_of"]

FORMAT = "rlmesh.run/1"
"""``format`` key of a saved run."""


@dataclasses.dataclass
class EpisodeResult:
    """One finished episode.

    Attributes:
        index: Position of the episode in the run's plan (0-based).
        seed: Seed its reset used (``None``: the env's own randomness).
        steps: Steps taken.
        reward: Sum of the rewards (the return).
        terminated: Whether the env ended the episode.
        truncated: Whether it was cut short (time limit, ``max_episode_steps``, or an env
            restarted by the server).
        success: ``is_success`` or ``success`` from the final info, when the env reports it.
        duration_s: Wall-clock seconds from reset to the last step.
        endpoint: Address of the endpoint that ran it (``None`` for a local env).
        attempts: How many times it was started (more than 1 after an endpoint failed).
        predict_ms: Milliseconds the model spent predicting over the episode (0 where the
            runner does not time it: vector env lanes, endpoints of ``evaluate``).
        step_ms: Milliseconds the env spent stepping over the episode (likewise).
    """

    index: int
    seed: int | None
    steps: int
    reward: float
    terminated: bool
    truncated: bool
    success: bool | None = None
    duration_s: float = 0.0
    endpoint: str | None = None
    attempts: int = 1
    predict_ms: float = 0.0
    step_ms: float = 0.0

    @property
    def succeeded(self) -> bool:
        """Whether the env reported success (``success`` is true; unknown counts as not)."""
        return self.success is True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeResult:
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class RunResult:
    """Every episode of a run, in plan order, with the run's settings and notable events.

    Attributes:
        episodes: The finished episodes, sorted by ``index``.
        settings: How the run was made (endpoints, seeds, limits, policy...).
        events: Things that happened on the way, e.g. an endpoint that failed and the
            episode re-run elsewhere (each a dict with at least ``kind`` and ``message``).
        interrupted: Whether the run was stopped (Ctrl+C) before every episode finished.
        planned: Episodes planned (``num_episodes`` may be lower if interrupted or if every
            endpoint failed).
    """

    episodes: list[EpisodeResult] = dataclasses.field(default_factory=list)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    interrupted: bool = False
    planned: int = 0

    @property
    def num_episodes(self) -> int:
        """Episodes finished."""
        return len(self.episodes)

    @property
    def complete(self) -> bool:
        """Whether every planned episode finished."""
        return self.num_episodes >= self.planned and not self.interrupted

    @property
    def total_steps(self) -> int:
        """Steps over all finished episodes."""
        return sum(e.steps for e in self.episodes)

    @property
    def rewards(self) -> list[float]:
        """The episodes' returns, in plan order."""
        return [e.reward for e in self.episodes]

    @property
    def mean_reward(self) -> float:
        """Mean return (``nan`` without episodes)."""
        return _mean(self.rewards)

    @property
    def std_reward(self) -> float:
        """Population standard deviation of the returns (``nan`` without episodes)."""
        rewards = self.rewards
        if not rewards:
            return math.nan
        mean = _mean(rewards)
        return math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))

    @property
    def mean_steps(self) -> float:
        """Mean episode length (``nan`` without episodes)."""
        return _mean([float(e.steps) for e in self.episodes])

    @property
    def success_rate(self) -> float | None:
        """Share of successful episodes among those that report success, else ``None``."""
        known = [e.success for e in self.episodes if e.success is not None]
        return sum(known) / len(known) if known else None

    def by_endpoint(self) -> dict[str, list[EpisodeResult]]:
        """Episodes grouped by the endpoint that ran them (``"local"`` for local envs)."""
        groups: dict[str, list[EpisodeResult]] = {}
        for episode in self.episodes:
            groups.setdefault(episode.endpoint or "local", []).append(episode)
        return groups

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a dict."""
        return {"num_episodes": self.num_episodes, "planned": self.planned,
                "mean_reward": _json_float(self.mean_reward),
                "std_reward": _json_float(self.std_reward),
                "mean_steps": _json_float(self.mean_steps),
                "success_rate": self.success_rate, "total_steps": self.total_steps,
                "interrupted": self.interrupted, "events": len(self.events)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: format tag, settings, summary, episodes, events."""
        return {"format": FORMAT, "settings": self.settings, "summary": self.summary(),
                "episodes": [e.to_dict() for e in self.episodes], "events": self.events,
                "interrupted": self.interrupted, "planned": self.planned}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: If ``data`` is not a saved rlmesh run.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an rlmesh run (expected format {FORMAT!r})")
        episodes = [EpisodeResult.from_dict(e) for e in data.get("episodes", [])]
        return cls(episodes=episodes, settings=dict(data.get("settings", {})),
                   events=list(data.get("events", [])),
                   interrupted=bool(data.get("interrupted", False)),
                   planned=int(data.get("planned", len(episodes))))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the run as JSON (atomically: a partial file never replaces a good one)."""
        target = os.fspath(path)
        temporary = f"{target}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=1, default=_jsonable)
            handle.write("\n")
        os.replace(temporary, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        """Read a run written by :meth:`save`."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _jsonable(value: Any) -> Any:
    """Fallback for ``json.dump``: numpy scalars and arrays, anything else as its repr."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def success_of(info: Any) -> bool | None:
    """``is_success`` (or ``success``) from an episode's final info, when present."""
    if not isinstance(info, dict):
        return None
    value = info.get("is_success", info.get("success"))
    if value is None:
        return None
    try:
        return bool(value)
    except (TypeError, ValueError):
        return None
