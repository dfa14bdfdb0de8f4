"""``rlmesh.Recorder``: runs recorded as one result set, exported as a portable bundle.

A recorder gathers *workloads* (one model on one task of one env). :meth:`Recorder.add`
records a finished :class:`rlmesh.RunResult` as a new workload; :meth:`Recorder.capture`
returns hooks that record a live run into a new workload, with videos of its cameras.
:meth:`Recorder.export` writes the bundle: ``result.json`` (the ``rlmesh.result.v1``
document, :meth:`Recorder.to_dict`) and the ``media/`` files, as a folder or one zip.

``Recorder(directory)``, rlmesh's older per-episode video recorder, still works: it makes a
:class:`rlmesh.VideoRecorder` and warns that the name is deprecated.
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import shutil
import uuid
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from rlmesh.evaluation.recording import VideoRecorder
from rlmesh.evaluation.result_capture import CaptureHooks
from rlmesh.evaluation.result_media import MediaStager, safe_name
from rlmesh.evaluation.result_records import EpisodeRecord, ResultSet, WorkloadRecord
from rlmesh.evaluation.results import RunResult
from rlmesh.evaluation.run_hooks import RunHooks

__all__ = ["DEFAULT_FPS", "DEFAULT_QUALITY", "DEFAULT_VIDEO_INFO_KEYS", "RESULT_FILE",
           "Recorder"]

DEFAULT_FPS = 30
"""Playback rate of recorded videos."""
DEFAULT_QUALITY = 60
"""Picture quality of recorded videos, 1 (smallest) to 100 (best)."""
DEFAULT_VIDEO_INFO_KEYS = ("video_artifact_path", "video_url")
"""Step ``info`` keys that may name a video the env wrote itself."""
RESULT_FILE = "result.json"
"""The document's file name in a bundle."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class Recorder:
    """Records runs as workloads of one result set and exports them as one bundle.

    Example::

        recorder = rlmesh.Recorder()
        result = rlmesh.run(model, env, seeds=range(20))
        recorder.add(result, model="my-policy", env="CartPole-v1")
        recorder.export("results/cartpole.zip")

    Args:
        result_set_id: The set's id (default: a new random hex id).
        fps: Playback rate of captured videos (at least 1).
        quality: Picture quality of captured videos, 1 (smallest) to 100 (best).

    Raises:
        ValueError: If ``fps`` or ``quality`` is out of range.
    """

    def __new__(cls, directory: str | os.PathLike[str] | None = None, *args: Any,
                **kwargs: Any) -> Any:
        """A result-set recorder, or (given ``directory``) a deprecated video recorder."""
        if directory is None:
            return super().__new__(cls)
        warnings.warn("rlmesh.Recorder(directory, ...) is deprecated: use "
                      "rlmesh.VideoRecorder(directory, ...) for per-episode videos "
                      "(rlmesh.Recorder() is now the result-set recorder)",
                      DeprecationWarning, stacklevel=2)
        return VideoRecorder(directory, *args, **kwargs)

    def __init__(self, directory: None = None, *, result_set_id: str | None = None,
                 fps: int = DEFAULT_FPS, quality: int = DEFAULT_QUALITY) -> None:
        if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
            raise ValueError(f"Recorder fps must be an int >= 1, not {fps!r}")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ValueError(f"Recorder quality must be an int from 1 to 100, not {quality!r}")
        self._set = ResultSet(result_set_id or uuid.uuid4().hex)
        self._stager = MediaStager(fps=fps, quality=quality)

    @property
    def result_set_id(self) -> str:
        """The set's id, written into the document as ``resultSetId``."""
        return self._set.result_set_id

    @property
    def workloads(self) -> tuple[WorkloadRecord, ...]:
        """The workloads so far, in the order they were started."""
        return tuple(self._set.workloads)

    def _workload(self, model: str, env: str, task: str | None,
                  config: dict[str, Any] | None) -> WorkloadRecord:
        workload = WorkloadRecord(str(model), str(env), str(env if task is None else task),
                                  dict(config or {}))
        self._set.workloads.append(workload)
        return workload

    def add(self, result: RunResult, *, model: str, env: str, task: str | None = None,
            config: dict[str, Any] | None = None,
            included_in_metrics: bool = True) -> WorkloadRecord:
        """Record a finished run as a new workload (no media).

        Args:
            result: What ``rlmesh.run``, ``Session.run`` or ``rlmesh.evaluate`` returned.
            model: The model's name.
            env: The env's name.
            task: The task's name (default: ``env``).
            config: Free-form settings to keep with the workload.
            included_in_metrics: Whether the workload's metrics count these episodes.

        Returns:
            The new workload.
        """
        workload = self._workload(model, env, task, config)
        for episode in result.episodes:
            workload.episodes.append(EpisodeRecord.from_result(
                episode, index=len(workload.episodes), included_in_metrics=included_in_metrics))
        return workload

    def capture(self, *, model: str, env: str, task: str | None = None,
                config: dict[str, Any] | None = None, cameras: Sequence[str] | None = None,
                session: Any = None,
                video_info_keys: Sequence[str] = DEFAULT_VIDEO_INFO_KEYS,
                included_in_metrics: bool = True) -> RunHooks:
        """Hooks that record a live run into a new workload, with videos.

        Pass them as ``hooks=`` to ``rlmesh.run``, ``rlmesh.session`` or ``rlmesh.evaluate``;
        one hooks object may watch several runs, whose episodes join one workload.

        Args:
            model: The model's name.
            env: The env's name.
            task: The task's name (default: ``env``).
            config: Free-form settings to keep with the workload.
            cameras: What to film each step: ``"render"`` (the env's ``render()`` frames)
                and keys of a dict observation holding images. ``None``: what the
                ``session``'s env offers (``render`` when it renders ``rgb_array``, and its
                image observation keys), or nothing without a session.
            session: The :class:`rlmesh.Session` these hooks watch, if any.
            video_info_keys: ``info`` keys that may hold the path of a video the env wrote
                itself; the file is copied into the bundle.
            included_in_metrics: Whether the workload's metrics count these episodes.

        Returns:
            The hooks (an :class:`rlmesh.RunHooks`).
        """
        workload = self._workload(model, env, task, config)
        where = (f"media/w{len(self._set.workloads) - 1:03d}-{safe_name(workload.model)}/"
                 f"{safe_name(workload.task)}")
        return CaptureHooks(workload, self._stager, where, cameras=cameras, session=session,
                            video_keys=video_info_keys,
                            included_in_metrics=included_in_metrics)

    def to_dict(self, *, recorded_at: str | None = None) -> dict[str, Any]:
        """The ``rlmesh.result.v1`` document (``recordedAt``: ``recorded_at`` or now, UTC)."""
        return self._set.to_dict(recorded_at=recorded_at or _now())

    def export(self, path: str | os.PathLike[str], *, archive: bool | str | None = None,
               recorded_at: str | None = None) -> Path:
        """Write the bundle: ``result.json`` and the ``media/`` files.

        Args:
            path: The folder (created if missing) or zip file to write.
            archive: ``True``/``"zip"`` for a zip, ``False``/``"folder"`` for a folder;
                ``None``: a zip when ``path`` ends in ``.zip``.
            recorded_at: The document's ``recordedAt`` (default: now, UTC, ISO 8601).

        Returns:
            The written path.

        Raises:
            ValueError: If ``archive`` is none of those.
        """
        target = Path(path)
        document = json.dumps(self.to_dict(recorded_at=recorded_at), indent=2)
        if _as_zip(archive, target):
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
                bundle.writestr(RESULT_FILE, document)
                for source, inside in self._stager.assets:
                    bundle.write(source, inside)
            return target
        target.mkdir(parents=True, exist_ok=True)
        (target / RESULT_FILE).write_text(document, encoding="utf-8")
        for source, inside in self._stager.assets:
            destination = target.joinpath(*inside.split("/"))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        return target

    def close(self) -> None:
        """Delete the staged media (call after :meth:`export`; idempotent)."""
        self._stager.cleanup()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# What help() and inspect show: the result-set form (``directory`` is the deprecated one).
setattr(Recorder, "__signature__", inspect.signature(Recorder.__init__).replace(  # noqa: B010
    parameters=list(inspect.signature(Recorder.__init__).parameters.values())[2:]))


def _as_zip(archive: bool | str | None, path: Path) -> bool:
    if archive is None:
        return path.suffix.lower() == ".zip"
    if archive in (True, "zip"):
        return True
    if archive in (False, "folder", "dir"):
        return False
    raise ValueError(f"archive must be True, False, 'zip' or 'folder', not {archive!r}")
