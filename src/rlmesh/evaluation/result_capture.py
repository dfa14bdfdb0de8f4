"""The hooks :meth:`rlmesh.Recorder.capture` returns: a live run recorded into a workload.

Each finished episode becomes an :class:`EpisodeRecord` of the workload, indexed in the
workload (so several runs through one hooks object never share an index). Cameras are
filmed every step (and after each reset): ``"render"`` is the env's ``render()`` frame, any
other name a key of a dict observation holding an image. A video the env wrote itself is
found by path in the step's ``info`` (under one of ``video_keys``; the first hit wins).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.result_media import Frame, MediaStager, as_frame
from rlmesh.evaluation.result_records import EpisodeRecord, MediaRef, WorkloadRecord
from rlmesh.evaluation.results import EpisodeResult
from rlmesh.evaluation.run_hooks import RunHooks, StepEvent

__all__ = ["RENDER", "CaptureHooks", "discover_cameras"]

RENDER = "render"
"""The camera name of the env's ``render()`` frames."""


def discover_cameras(env: Any) -> list[str]:
    """What a session's env can be filmed by: ``render`` (rgb) and image observation keys."""
    cameras = [RENDER] if getattr(env, "render_mode", None) == "rgb_array" else []
    spaces = getattr(getattr(env, "observation_space", None), "spaces", None)
    if isinstance(spaces, dict):
        for key, space in spaces.items():
            shape, dtype = getattr(space, "shape", None), getattr(space, "dtype", None)
            if (shape is not None and len(shape) == 3 and shape[2] in (1, 3, 4)
                    and str(dtype) == "uint8"):
                cameras.append(str(key))
    return cameras


class CaptureHooks(RunHooks):
    """Records a run's episodes (and their media) into ``workload``.

    Args:
        workload: The workload the episodes join.
        stager: Where media files are written.
        where: The bundle folder of this workload's media.
        cameras: The cameras to film (``None``: found on the session's env, if any).
        session: The :class:`rlmesh.Session` being driven, if any: its env is rendered, and
            its cameras found, when ``cameras`` is ``None``.
        video_keys: ``info`` keys that may hold the path of a video the env wrote.
        included_in_metrics: Whether the workload's metrics count these episodes.
    """

    def __init__(self, workload: WorkloadRecord, stager: MediaStager, where: str, *,
                 cameras: Sequence[str] | None, session: Any, video_keys: Sequence[str],
                 included_in_metrics: bool) -> None:
        self.workload = workload
        self._stager, self._where = stager, where
        self._cameras = None if cameras is None else [str(c) for c in cameras]
        self._session = session
        self._video_keys = tuple(video_keys)
        self._included = included_in_metrics
        self._frames: dict[int, dict[str, list[Frame]]] = {}
        self._videos: dict[int, Any] = {}
        self._failed: set[str] = set()

    # -- the RunHooks events ----------------------------------------------------------------

    def on_episode_start(self, index: int, seed: int | None) -> None:
        """Start filming episode ``index``."""
        self._start(index, None)

    def on_step(self, event: StepEvent) -> None:
        """Film one step and look for the env's own video."""
        self._step(event.episode, event.observation, event.info)

    def on_episode_end(self, result: EpisodeResult) -> None:
        """Record the episode, with its media, in the workload."""
        index = len(self.workload.episodes)
        where = f"{self._where}/ep{index:04d}"
        media: list[MediaRef | None] = [
            self._stager.stage_frames(where, camera, frames)
            for camera, frames in self._frames.pop(result.index, {}).items()]
        video = self._videos.pop(result.index, None)
        if video is not None:
            media.append(self._stager.carry_video(where, video))
        self.workload.episodes.append(EpisodeRecord.from_result(
            result, index=index, included_in_metrics=self._included,
            media=tuple(ref for ref in media if ref is not None)))

    def relay(self) -> Hooks:
        """These hooks as :class:`rlmesh.Hooks`, which see observations and frames too."""
        frames = self._session is None and RENDER in (self._cameras or ())
        return _FrameRelay(self) if frames else _Relay(self)

    # -- filming ----------------------------------------------------------------------------

    def cameras(self) -> list[str]:
        """The cameras filmed (found on the session's env at the first episode if unset)."""
        if self._cameras is None:
            self._cameras = ([] if self._session is None
                             else discover_cameras(self._session.env))
        return self._cameras

    def _start(self, index: int, observation: Any) -> None:
        self._frames[index] = {camera: [] for camera in self.cameras()}
        self._videos.pop(index, None)
        self._film(index, observation)

    def _step(self, index: int, observation: Any, info: Any) -> None:
        if index not in self._videos and isinstance(info, dict):
            found = next((info[k] for k in self._video_keys if info.get(k)), None)
            if found is not None:
                self._videos[index] = found
        self._film(index, observation)

    def _film(self, index: int, observation: Any) -> None:
        if observation is None and self._session is not None:
            observation = self._session.observation
        for camera in self.cameras():
            if camera == RENDER:
                if self._session is not None:
                    self.frame(index, camera, lambda: self._session.env.render())
            elif isinstance(observation, dict):
                self.frame(index, camera, lambda c=camera: observation.get(c))

    def frame(self, index: int, camera: str, read: Any) -> None:
        """Keep ``read()`` as a frame of ``camera`` (a failing camera is dropped once)."""
        if camera in self._failed:
            return
        try:
            frame = as_frame(read())
            if frame is None:
                raise TypeError("not an rgb image")
        except Exception as exc:  # best effort: a camera never stops an evaluation
            self._failed.add(camera)
            warnings.warn(f"rlmesh.Recorder: camera {camera!r} is not recorded ({exc})",
                          RuntimeWarning, stacklevel=2)
            return
        self._frames.setdefault(index, {}).setdefault(camera, []).append(frame)


class _Relay(Hooks):
    """How the runners call :class:`CaptureHooks`: with each observation and info."""

    def __init__(self, capture: CaptureHooks) -> None:
        self.capture = capture

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        self.capture._start(index, observation)

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.capture._step(index, observation, info)

    def on_episode_end(self, result: EpisodeResult) -> None:
        self.capture.on_episode_end(result)


class _FrameRelay(_Relay):
    """A relay that asks the runner for ``render()`` frames (only when ``render`` is filmed)."""

    def on_frame(self, index: int, frame: Any) -> None:
        self.capture.frame(index, RENDER, lambda: frame)
