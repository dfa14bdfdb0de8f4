"""``rlmesh.VideoRecorder``: episode videos from ``render()`` frames.

Pass a recorder as a hook (``rlmesh.run(..., hooks=VideoRecorder("videos"))``, or
``rlmesh eval ... --record videos``): every episode becomes one mp4 named by its endpoint,
seed, return and index, e.g. ``127.0.0.1-5555_seed3_return41.0_ep0007.mp4``. The env must
render ``rgb_array`` frames (serve it with ``render_mode="rgb_array"``). Videos are written
with imageio's ffmpeg plugin: the ``record`` extra (see ``docs/install.md``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

import numpy as np

from rlmesh.evaluation.hooks import Hooks
from rlmesh.evaluation.results import EpisodeResult
from rlmesh.extras import missing_extra

__all__ = ["VideoRecorder", "write_mp4"]

log = logging.getLogger("rlmesh")


class VideoRecorder(Hooks):
    """Writes one mp4 per episode from the frames the env renders.

    Args:
        directory: Where videos go (created if missing).
        fps: Frames per second of the videos.
        max_frames: Keep at most this many frames per episode (the first ones).

    Raises:
        ImportError: If imageio or its ffmpeg plugin is missing.
    """

    def __init__(self, directory: str | os.PathLike[str], fps: int = 30,
                 max_frames: int = 10_000) -> None:
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (the plugin imageio writes mp4 with)
        except ImportError as exc:
            raise missing_extra("rlmesh.VideoRecorder", "imageio with its ffmpeg plugin",
                                "record") from exc
        self._imageio = imageio
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.fps = fps
        self.max_frames = max_frames
        self.paths: list[str] = []
        """Videos written so far, in the order their episodes finished."""
        self._frames: dict[int, list[np.ndarray[Any, Any]]] = {}
        self._lock = threading.Lock()
        self._warned = False

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        """Forget frames of an earlier attempt at this episode."""
        with self._lock:
            self._frames[index] = []

    def on_frame(self, index: int, frame: Any) -> None:
        """Keep an rgb frame (anything else is skipped, with one warning)."""
        array = np.asarray(frame) if frame is not None else None
        if array is None or array.ndim != 3 or array.shape[2] not in (3, 4):
            if not self._warned:
                self._warned = True
                log.warning("VideoRecorder: the env renders %s, not rgb_array frames; "
                            "nothing to record (serve it with render_mode='rgb_array')",
                            None if array is None else f"shape {array.shape}")
            return
        with self._lock:
            frames = self._frames.setdefault(index, [])
            if len(frames) < self.max_frames:
                frames.append(np.ascontiguousarray(array[:, :, :3], dtype=np.uint8))

    def on_episode_end(self, result: EpisodeResult) -> None:
        """Write the episode's video."""
        with self._lock:
            frames = self._frames.pop(result.index, [])
        if not frames:
            return
        where = re.sub(r"[^A-Za-z0-9.]+", "-", result.endpoint or "local").strip("-")
        name = (f"{where}_seed{result.seed}_return{result.reward:.1f}"
                f"_ep{result.index:04d}.mp4")
        path = os.path.join(self.directory, name)
        write_mp4(self._imageio, path, frames, fps=self.fps, quality=7.0)
        with self._lock:
            self.paths.append(path)


def write_mp4(imageio: Any, path: str, frames: list[np.ndarray[Any, Any]], *, fps: int,
              quality: float) -> None:
    """Write rgb ``uint8`` frames of one size as an H.264 mp4.

    Args:
        imageio: The ``imageio.v2`` module (with its ffmpeg plugin).
        path: The file to write.
        frames: ``(height, width, 3)`` frames, all of one size.
        fps: Frames per second.
        quality: imageio's quality, 0 (smallest) to 10 (best).
    """
    height, width = frames[0].shape[:2]
    # libx264 wants even sizes: pad the last row/column when needed.
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1,
                                quality=quality)
    try:
        for frame in frames:
            writer.append_data(np.pad(frame, pad) if any(p[1] for p in pad) else frame)
    finally:
        writer.close()
