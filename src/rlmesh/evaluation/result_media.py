"""Media of a result set: frames made into files in a staging directory, until export.

A :class:`MediaStager` turns the frames one camera filmed in one episode into one file in a
temporary directory: an H.264 mp4 when imageio and its ffmpeg plugin are installed (the
``record`` extra), else the raw frames as a compressed ``.npz``. A video the env wrote itself
is not copied until export; only its path is kept. Everything is best effort: a camera whose
frames cannot be written is dropped with a warning, and the run goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from typing import Any

import numpy as np

from rlmesh.evaluation.recording import write_mp4
from rlmesh.evaluation.result_records import MediaRef

__all__ = ["MediaStager", "as_frame", "safe_name"]

Frame = np.ndarray[Any, Any]


def safe_name(text: str) -> str:
    """``text`` as one file-name part (runs of other characters become ``-``)."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.") or "x"


def as_frame(value: Any) -> Frame | None:
    """``value`` as an ``(H, W, 3)`` ``uint8`` frame, or ``None`` if it is not an image."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        return None
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


class MediaStager:
    """Writes episode media to a staging directory and lists what export must copy.

    Args:
        fps: Playback rate of the videos.
        quality: 1 (smallest files) to 100 (best pictures).
    """

    def __init__(self, *, fps: int, quality: int) -> None:
        self.fps = fps
        self.quality = quality
        self.assets: list[tuple[str, str]] = []
        """``(file, path inside the bundle)`` of every staged or carried file."""
        self._directory: str | None = None
        self._imageio: Any = None
        self._no_video_warned = False

    def _staging(self) -> str:
        if self._directory is None:
            self._directory = tempfile.mkdtemp(prefix="rlmesh-result-set-")
        return self._directory

    def _encoder(self) -> Any:
        if self._imageio is None:
            try:
                import imageio.v2 as imageio
                import imageio_ffmpeg  # noqa: F401  (the plugin imageio writes mp4 with)
            except ImportError:
                self._imageio = False
                if not self._no_video_warned:
                    self._no_video_warned = True
                    warnings.warn("rlmesh.Recorder: imageio's ffmpeg plugin is missing (the "
                                  "'record' extra), so frames are kept as .npz arrays, not "
                                  "mp4 videos", RuntimeWarning, stacklevel=2)
            else:
                self._imageio = imageio
        return self._imageio or None

    def stage_frames(self, where: str, camera: str, frames: list[Frame]) -> MediaRef | None:
        """One camera's frames of one episode as a file under ``where`` (in the bundle).

        Returns:
            The file's :class:`MediaRef`, or ``None`` if there were no frames or writing
            them failed (with a warning).
        """
        if not frames:
            return None
        height, width = frames[0].shape[:2]
        frames = [f for f in frames if f.shape[:2] == (height, width)]
        imageio = self._encoder()
        kind, suffix = ("video", "mp4") if imageio else ("frames", "npz")
        relative = f"{where}/{safe_name(camera)}.{suffix}"
        target = os.path.join(self._staging(), *relative.split("/"))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if imageio:
                write_mp4(imageio, target, frames, fps=self.fps, quality=self.quality / 10)
            else:
                np.savez_compressed(target, frames=np.stack(frames))
        except Exception as exc:  # best effort: media never stops an evaluation
            warnings.warn(f"rlmesh.Recorder: dropped camera {camera!r} of {where}: {exc}",
                          RuntimeWarning, stacklevel=2)
            return None
        self.assets.append((target, relative))
        return MediaRef(camera, kind, relative, suffix, len(frames), int(width), int(height),
                        float(self.fps))

    def carry_video(self, where: str, path: Any) -> MediaRef | None:
        """A video file the env wrote (``path``), to be copied into the bundle on export.

        Returns:
            Its :class:`MediaRef`, or ``None`` (with a warning) if ``path`` is no file.
        """
        source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
        if source is None or not os.path.isfile(source):
            warnings.warn(f"rlmesh.Recorder: the env's video {path!r} is not a file here; "
                          "not recorded", RuntimeWarning, stacklevel=2)
            return None
        name = os.path.basename(source)
        relative = f"{where}/{safe_name(name)}"
        suffix = os.path.splitext(name)[1].lstrip(".").lower() or "bin"
        self.assets.append((source, relative))
        return MediaRef("default", "video", relative, suffix)

    def cleanup(self) -> None:
        """Delete the staging directory (idempotent)."""
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
            self.assets = [(f, r) for f, r in self.assets if os.path.isfile(f)]
