"""The records of a result set: what :class:`rlmesh.Recorder` keeps and exports.

A result set is a list of *workloads*; a workload is one model playing one task of one env,
with the episodes of one or more runs. :meth:`ResultSet.to_dict` gives the
``rlmesh.result.v1`` document (``result.json`` of an exported bundle). Field names in the
document are camelCase (``durationS``, ``includedInMetrics``); every value is plain JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlmesh.evaluation.results import EpisodeResult

__all__ = ["SCHEMA", "EpisodeRecord", "MediaRef", "ResultSet", "WorkloadRecord"]

SCHEMA = "rlmesh.result.v1"
"""The ``schema`` tag of an exported result set."""


@dataclasses.dataclass(frozen=True)
class MediaRef:
    """One media file of an episode, by its path inside the bundle.

    Attributes:
        camera: What was filmed: ``"render"``, an observation key, or ``"default"`` for a
            video the env made itself.
        kind: ``"video"`` (a playable file) or ``"frames"`` (a ``(T, H, W, C)`` ``uint8``
            array in an ``.npz`` under the key ``frames``).
        path: Where the file is, relative to the bundle's top (``media/...``).
        format: The file's format (``"mp4"``, ``"npz"``, or the suffix of an env's video).
        frame_count: How many frames it holds, when known.
        width: Frame width in pixels, when known.
        height: Frame height in pixels, when known.
        fps: Playback rate, when known.
    """

    camera: str
    kind: str
    path: str
    format: str
    frame_count: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The document's entry for this file (unknown sizes left out)."""
        known = {"frameCount": self.frame_count, "width": self.width, "height": self.height,
                 "fps": self.fps}
        return {"camera": self.camera, "kind": self.kind, "path": self.path,
                "format": self.format, **{k: v for k, v in known.items() if v is not None}}


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """One recorded episode: the fields of :class:`rlmesh.EpisodeResult` and its media.

    Attributes:
        index: Its position in its workload (unique there, across runs).
        seed: The seed its reset used.
        steps: Steps taken.
        reward: Its return.
        terminated: Whether the env ended it.
        truncated: Whether it was cut short.
        success: The env's ``is_success``/``success``, when reported.
        duration_s: Wall-clock seconds it took.
        included_in_metrics: Whether the workload's metrics count it (``False`` for warm-up
            or discarded episodes).
        media: Its media files.
    """

    index: int
    seed: int | None
    steps: int
    reward: float
    terminated: bool
    truncated: bool
    success: bool | None = None
    duration_s: float = 0.0
    included_in_metrics: bool = True
    media: tuple[MediaRef, ...] = ()

    @classmethod
    def from_result(cls, result: EpisodeResult, *, index: int,
                    included_in_metrics: bool = True,
                    media: tuple[MediaRef, ...] = ()) -> EpisodeRecord:
        """Record a finished episode under ``index``."""
        return cls(index, result.seed, result.steps, float(result.reward),
                   bool(result.terminated), bool(result.truncated), result.success,
                   float(result.duration_s), included_in_metrics, media)

    @property
    def succeeded(self) -> bool:
        """Whether the env reported success (unreported counts as not, as in rlmesh)."""
        return self.success is True

    def to_dict(self) -> dict[str, Any]:
        """The document's entry for this episode (``media`` only when there is some)."""
        entry: dict[str, Any] = {
            "index": self.index, "seed": self.seed, "steps": self.steps,
            "reward": self.reward, "terminated": self.terminated,
            "truncated": self.truncated, "success": self.success,
            "durationS": self.duration_s, "includedInMetrics": self.included_in_metrics,
        }
        if self.media:
            entry["media"] = [ref.to_dict() for ref in self.media]
        return entry


@dataclasses.dataclass
class WorkloadRecord:
    """One model on one task of one env: the episodes of one or more runs.

    Attributes:
        model: The model's name, as the caller gave it.
        env: The env's name.
        task: The task's name (the env's name when the caller names no task).
        config: Free-form settings of the caller, kept as given.
        episodes: The recorded episodes, in the order they finished.
    """

    model: str
    env: str
    task: str
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    episodes: list[EpisodeRecord] = dataclasses.field(default_factory=list)

    def _counted(self) -> list[EpisodeRecord]:
        return [episode for episode in self.episodes if episode.included_in_metrics]

    @property
    def mean_reward(self) -> float:
        """Mean return of the counted episodes (0.0 without any)."""
        counted = self._counted()
        return sum(e.reward for e in counted) / len(counted) if counted else 0.0

    @property
    def success_rate(self) -> float:
        """Share of the counted episodes that succeeded (0.0 without any)."""
        counted = self._counted()
        return sum(e.succeeded for e in counted) / len(counted) if counted else 0.0

    @property
    def total_steps(self) -> int:
        """Steps of every episode, counted in the metrics or not."""
        return sum(e.steps for e in self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """The document's entry for this workload, with its metrics."""
        return {
            "model": self.model, "env": self.env, "task": self.task,
            "config": dict(self.config), "numEpisodes": len(self.episodes),
            "metrics": {"meanReward": self.mean_reward, "successRate": self.success_rate,
                        "totalSteps": self.total_steps},
            "episodes": [episode.to_dict() for episode in self.episodes],
        }


@dataclasses.dataclass
class ResultSet:
    """Every workload of one recorder, under one id.

    Attributes:
        result_set_id: The set's id (made by the recorder unless the caller gives one; a
            platform that ingests the bundle can use it to recognise a second upload).
        workloads: The workloads, in the order they were started.
    """

    result_set_id: str
    workloads: list[WorkloadRecord] = dataclasses.field(default_factory=list)

    def to_dict(self, *, recorded_at: str) -> dict[str, Any]:
        """The ``rlmesh.result.v1`` document, stamped with ``recorded_at``."""
        return {"schema": SCHEMA, "resultSetId": self.result_set_id,
                "recordedAt": recorded_at,
                "workloads": [workload.to_dict() for workload in self.workloads]}
