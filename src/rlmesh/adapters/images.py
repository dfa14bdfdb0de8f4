"""Placeholder until the pixel pipeline lands (replaced by the images branch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlmesh.adapters.advisory import Advisory

__all__ = ["Camera", "ImagePipe", "plan_image"]


@dataclass(frozen=True)
class Camera:
    """An env camera."""

    path: str
    role: str
    shape: tuple[int, ...]
    layout: str
    dtype: Any
    low: float | None
    high: float | None
    upside_down: bool


class ImagePipe:
    """Identity pipe."""

    steps: tuple[str, ...] = ()
    advisories: tuple[Advisory, ...] = ()
    blank = False

    def __call__(self, frame: Any) -> Any:
        """The frame."""
        return np.asarray(frame)

    def pad_frame(self) -> Any:
        """Nothing."""
        raise NotImplementedError


def plan_image(leaf: Any, camera: Camera | None, key: str) -> ImagePipe:
    """Identity."""
    return ImagePipe()
