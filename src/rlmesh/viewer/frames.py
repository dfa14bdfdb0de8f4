"""Frames as the viewer holds them: the latest one only, as 8-bit RGB.

A run never waits for a viewer. Whoever produces frames calls :meth:`LatestFrame.put`, which
replaces the frame held (a frame nobody looked at is dropped, never queued); whoever shows
them calls :meth:`LatestFrame.wait_newer` and gets the newest. :func:`as_rgb` turns what
``render()`` or an image observation gives (HWC or CHW, gray, RGBA, floats in [0, 1]) into an
``(H, W, 3)`` ``uint8`` array, or ``None`` when it is not an image.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["LatestFrame", "as_rgb"]


def _hwc(value: Any) -> np.ndarray | None:
    """``value`` as an HWC array with 1, 3 or 4 channels, or ``None``."""
    try:
        frame = np.asarray(value)
    except Exception:
        return None
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or min(frame.shape) == 0:
        return None
    if frame.shape[0] in (1, 3, 4) and frame.shape[2] not in (1, 3, 4):
        frame = frame.transpose(1, 2, 0)  # CHW -> HWC
    return frame if frame.shape[2] in (1, 3, 4) else None


def _to_bytes(frame: np.ndarray) -> np.ndarray | None:
    if frame.dtype == np.uint8:
        return frame
    if not np.issubdtype(frame.dtype, np.number):
        return None
    data = frame.astype(np.float32)
    if data.size and float(np.nanmax(data)) <= 1.0:
        data = data * 255.0
    return np.clip(np.nan_to_num(data), 0, 255).astype(np.uint8)


def as_rgb(value: Any) -> np.ndarray | None:
    """``value`` as an ``(H, W, 3)`` ``uint8`` image, or ``None`` if it is not an image."""
    frame = None if value is None else _hwc(value)
    frame = None if frame is None else _to_bytes(frame)
    if frame is None:
        return None
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


class LatestFrame:
    """A slot holding the newest frame and a counter of how many were put."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._version = 0

    @property
    def version(self) -> int:
        """How many frames have been put (the one held is number ``version``)."""
        return self._version

    def put(self, frame: np.ndarray) -> None:
        """Hold ``frame`` (an RGB array) in place of the previous one; never blocks for long."""
        with self._cond:
            self._frame = frame
            self._version += 1
            self._cond.notify_all()

    def get(self) -> tuple[int, np.ndarray | None]:
        """``(version, frame)`` of the frame held now."""
        with self._cond:
            return self._version, self._frame

    def wait_newer(self, version: int, timeout: float) -> tuple[int, np.ndarray | None]:
        """Wait up to ``timeout`` seconds for a frame newer than ``version``; the newest."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > version, timeout)
            return self._version, self._frame
