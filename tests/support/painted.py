"""A CartPole whose ``rgb_array`` frames are painted with NumPy, for tests that watch frames.

Gymnasium's own CartPole renders with pygame, an optional dependency; the viewer's tests only
need frames that change as the cart moves, so this paints them (400x600, like CartPole's):
a white background, the track, the cart and the pole. ``PAINT_SOURCE`` is also written into
the slow env module that ``rlmesh serve`` children import (``tests/support/slow_env.py``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

PAINT_SOURCE = '''
import math

import numpy as np


def paint_cartpole(state):
    """A 400x600 RGB frame of a CartPole state (x, x_dot, theta, theta_dot)."""
    frame = np.full((400, 600, 3), 255, np.uint8)
    frame[300, :] = 0
    x = 0.0 if state is None else float(state[0])
    theta = 0.0 if state is None else float(state[2])
    cart = int(min(max((x + 2.4) / 4.8 * 600, 25), 575))
    frame[290:310, cart - 25:cart + 25] = 0
    for t in np.linspace(0.0, 1.0, 60):
        row = int(290 - 100 * t * math.cos(theta))
        col = int(cart + 100 * t * math.sin(theta))
        if 0 <= row < 400 and 0 <= col < 600:
            frame[max(row - 2, 0):row + 3, max(col - 4, 0):col + 5] = (202, 152, 101)
    return frame
'''
namespace: dict[str, Any] = {}
exec(PAINT_SOURCE, namespace)  # one source for this process and the serve children
paint_cartpole = namespace["paint_cartpole"]


class PaintedCartPole(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole-v1 (no pygame) whose ``render()`` returns a NumPy-painted frame."""

    def __init__(self, render_mode: str | None = "rgb_array") -> None:
        super().__init__(gym.make("CartPole-v1"))
        self._mode = render_mode

    @property
    def render_mode(self) -> str | None:  # type: ignore[override]
        return self._mode

    def render(self) -> Any:
        if self._mode != "rgb_array":
            return None
        cartpole: Any = self.env.unwrapped  # (a CartPoleEnv: its state is the pose)
        return paint_cartpole(cartpole.state)


def painted_cartpole(render_mode: str | None = "rgb_array") -> PaintedCartPole:
    """A painted CartPole (what ``gym.make("CartPole-v1", render_mode=...)`` gave)."""
    return PaintedCartPole(render_mode)
