"""A small simulated tabletop: a floating gripper, a red cube, a green goal pad, two cameras.

The env knows nothing about any model. It speaks its own conventions, like a real simulator:

* ``agentview``: a fixed overhead camera, RGB ``uint8`` (HWC), 128x128 unless
  ``TabletopEnv(camera=...)`` says otherwise;
* ``wrist``: a camera on the gripper looking down, the same size, turning with the gripper's
  yaw;
* ``eef_pos`` (metres), ``eef_quat`` (a ``w, x, y, z`` quaternion, MuJoCo's order) and
  ``gripper`` (finger opening in metres, 0 closed to 0.08 open);
* ``instruction``: one of a few task sentences, naming the corner the goal pad is in.

An action is 7 numbers: a position delta in metres (at most 5 cm per axis), a rotation delta
as an axis-angle vector in radians (at most 0.25 per axis) and a gripper command in
``[-1, 1]`` (negative closes, positive opens). Closing the fingers around the cube picks it up;
opening them drops it. The reward is the progress of the cube toward the goal pad, plus 1 on
success; an episode ends on success (cube released on the pad, ``info["is_success"]``) or after
``max_steps`` steps.

Rendering both cameras is done in NumPy on every step: that is the env's own cost.
:data:`TAGS` says, by role, what every observation leaf and action slice means; serving the
env with them (``rlmesh.EnvServer(env, tags=TAGS)``) lets any model with a ``ModelSpec``
drive it through a resolved adapter.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import rlmesh.adapters as adapt

SIZE = 128  # default camera resolution (both cameras)
HALF_TABLE = 0.4  # the overhead camera sees x, y in [-0.4, 0.4] metres
CUBE = 0.025  # half the cube's side
PAD = 0.06  # half the goal pad's side
OPEN = 0.08  # finger opening when fully open
MAX_MOVE = 0.05
MAX_TURN = 0.25
GRASP_XY = 0.03  # how far off the cube's centre the fingers may close and still hold it
GRASP_Z = 0.04

TASKS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("put the red cube on the green pad in the top left corner", (-0.22, 0.22)),
    ("put the red cube on the green pad in the top right corner", (0.22, 0.22)),
    ("put the red cube on the green pad in the bottom left corner", (-0.22, -0.22)),
    ("put the red cube on the green pad in the bottom right corner", (0.22, -0.22)),
)

_TABLE = np.array([176, 154, 120], np.uint8)
_TABLE_DARK = np.array([150, 128, 96], np.uint8)
_RED = np.array([210, 30, 30], np.uint8)
_GREEN = np.array([40, 190, 60], np.uint8)
_FINGER = np.array([60, 60, 70], np.uint8)


def rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    """The rotation matrix of an axis-angle vector (Rodrigues' formula)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * (cross @ cross)


def quaternion_wxyz(matrix: np.ndarray) -> np.ndarray:
    """A unit quaternion ``(w, x, y, z)`` with ``w >= 0`` for a rotation matrix."""
    m = matrix
    w = np.sqrt(max(0.0, 1.0 + m[0, 0] + m[1, 1] + m[2, 2])) / 2.0
    x = np.sqrt(max(0.0, 1.0 + m[0, 0] - m[1, 1] - m[2, 2])) / 2.0
    y = np.sqrt(max(0.0, 1.0 - m[0, 0] + m[1, 1] - m[2, 2])) / 2.0
    z = np.sqrt(max(0.0, 1.0 - m[0, 0] - m[1, 1] + m[2, 2])) / 2.0
    x = np.copysign(x, m[2, 1] - m[1, 2])
    y = np.copysign(y, m[0, 2] - m[2, 0])
    z = np.copysign(z, m[1, 0] - m[0, 1])
    quat = np.array([w, x, y, z])
    return quat / np.linalg.norm(quat)


def _overhead_background(size: int) -> np.ndarray:
    """The table seen from above: a checker of 10 cm tiles."""
    cells = (np.arange(size) * 2 * HALF_TABLE / size // 0.1).astype(int)
    dark = (cells[:, None] + cells[None, :]) % 2 == 1
    image = np.empty((size, size, 3), np.uint8)
    image[...] = _TABLE
    image[dark] = _TABLE_DARK
    return image


def _ring_offsets(inner: float, outer: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets of a ring (the gripper's outline in the overhead camera)."""
    reach = int(np.ceil(outer / (2 * HALF_TABLE / size)))
    grid = np.arange(-reach, reach + 1)
    dv, du = np.meshgrid(grid, grid, indexing="ij")
    radius = np.hypot(du, dv) * (2 * HALF_TABLE / size)
    keep = (radius >= inner) & (radius <= outer)
    return dv[keep], du[keep]


class TabletopEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Pick the red cube and place it on the green pad (see the module docstring).

    Args:
        max_steps: Steps before an episode is truncated.
        camera: Both cameras' resolution in pixels (square), at least 16.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, max_steps: int = 80, camera: int = SIZE) -> None:
        if int(camera) != camera or camera < 16:
            raise ValueError(f"camera is a resolution of at least 16 pixels, not {camera!r}")
        self.size = size = int(camera)
        image = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.observation_space = spaces.Dict({
            "agentview": image,
            "wrist": image,
            "eef_pos": spaces.Box(-1.0, 1.0, (3,), np.float32),
            "eef_quat": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "gripper": spaces.Box(0.0, OPEN, (1,), np.float32),
            "instruction": spaces.Text(max_length=96),
        })
        bound = np.array([MAX_MOVE] * 3 + [MAX_TURN] * 3 + [1.0], np.float32)
        self.action_space = spaces.Box(-bound, bound, dtype=np.float32)
        self.max_steps = max_steps
        self._background = _overhead_background(size)
        self._ring = _ring_offsets(0.04, 0.052, size)
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
        self._gv, self._gu = np.meshgrid(-centres, centres, indexing="ij")  # image up = +y
        self._eef = np.zeros(3)
        self._rot = np.eye(3)
        self._opening = OPEN
        self._cube = np.zeros(3)
        self._goal = np.zeros(2)
        self._task = ""
        self._held = False
        self._steps = 0

    # -- episode ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode: a random cube, a random task (goal corner) and gripper pose."""
        super().reset(seed=seed)
        rng = self.np_random
        self._task, goal = TASKS[int(rng.integers(len(TASKS)))]
        self._goal = np.asarray(goal) + rng.uniform(-0.05, 0.05, 2)
        while True:
            cube = rng.uniform(-0.3, 0.3, 2)
            if np.linalg.norm(cube - self._goal) > 0.2:
                break
        self._cube = np.array([cube[0], cube[1], CUBE])
        self._eef = np.array([*rng.uniform(-0.2, 0.2, 2), 0.25])
        self._rot = rotation_matrix(np.array([0.0, 0.0, rng.uniform(-0.6, 0.6)]))
        self._opening, self._held, self._steps = OPEN, False, 0
        return self._observation(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool,
                                                 dict[str, Any]]:
        """Move, turn, open or close the gripper; the cube follows a closed grasp."""
        act = np.clip(np.asarray(action, np.float64).reshape(7), self.action_space.low,
                      self.action_space.high)
        before = self._cube_to_goal()
        self._eef = np.clip(self._eef + act[:3], [-0.35, -0.35, 0.02], [0.35, 0.35, 0.4])
        self._rot = rotation_matrix(act[3:6]) @ self._rot
        self._grip(closing=act[6] < 0.0)
        if self._held:
            self._cube = np.array([self._eef[0], self._eef[1], max(self._eef[2], CUBE)])
        self._steps += 1
        success = not self._held and self._cube[2] <= CUBE + 1e-9 and bool(
            np.all(np.abs(self._cube[:2] - self._goal) < PAD))
        reward = 10.0 * (before - self._cube_to_goal()) + (1.0 if success else 0.0)
        truncated = not success and self._steps >= self.max_steps
        return self._observation(), float(reward), success, truncated, {"is_success": success}

    def _grip(self, closing: bool) -> None:
        if closing:
            was = self._opening
            self._opening = max(0.0, self._opening - 0.03)
            near = (np.linalg.norm(self._eef[:2] - self._cube[:2]) < GRASP_XY
                    and abs(self._eef[2] - self._cube[2]) < GRASP_Z)
            if not self._held and near and was > 2 * CUBE >= self._opening:
                self._held = True
            if self._held:  # the cube keeps the fingers apart
                self._opening = 2 * CUBE
        else:
            self._opening = min(OPEN, self._opening + 0.03)
            if self._held and self._opening > 2 * CUBE:
                self._held = False
                self._cube[2] = CUBE  # dropped onto the table

    def _cube_to_goal(self) -> float:
        return float(np.linalg.norm(self._cube[:2] - self._goal))

    # -- rendering -------------------------------------------------------------------------

    def _observation(self) -> dict[str, Any]:
        return {
            "agentview": self._render_overhead(),
            "wrist": self._render_wrist(),
            "eef_pos": self._eef.astype(np.float32),
            "eef_quat": quaternion_wxyz(self._rot).astype(np.float32),
            "gripper": np.array([self._opening], np.float32),
            "instruction": self._task,
        }

    def _pixel(self, x: float, y: float) -> tuple[int, int]:
        """Overhead pixel (row, column) of a table point."""
        scale = self.size / (2 * HALF_TABLE)
        return int((HALF_TABLE - y) * scale), int((x + HALF_TABLE) * scale)

    def _square(self, image: np.ndarray, x: float, y: float, half: float,
                colour: np.ndarray) -> None:
        top, left = self._pixel(x - half, y + half)
        bottom, right = self._pixel(x + half, y - half)
        image[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = colour

    def _render_overhead(self) -> np.ndarray:
        image = self._background.copy()
        self._square(image, *self._goal, PAD, _GREEN)
        self._square(image, *self._cube[:2], CUBE, _RED)
        row, col = self._pixel(*self._eef[:2])
        rows, cols = self._ring[0] + row, self._ring[1] + col
        inside = (rows >= 0) & (rows < self.size) & (cols >= 0) & (cols < self.size)
        image[rows[inside], cols[inside]] = _FINGER
        return image

    def _render_wrist(self) -> np.ndarray:
        """The table under the gripper, seen from 5 cm above the fingers, 90 degree view."""
        height = self._eef[2] + 0.05
        yaw = np.arctan2(self._rot[1, 0], self._rot[0, 0])
        c, s = np.cos(yaw) * height, np.sin(yaw) * height
        x = self._eef[0] + c * self._gu - s * self._gv
        y = self._eef[1] + s * self._gu + c * self._gv
        dark = (np.floor(x / 0.1) + np.floor(y / 0.1)) % 2 == 1
        image = np.where(dark[..., None], _TABLE_DARK, _TABLE).astype(np.uint8)
        pad = (np.abs(x - self._goal[0]) < PAD) & (np.abs(y - self._goal[1]) < PAD)
        image[pad] = _GREEN
        cube = (np.abs(x - self._cube[0]) < CUBE) & (np.abs(y - self._cube[1]) < CUBE)
        image[cube] = _RED
        size = self.size  # the fingers, drawn in 128-pixel units scaled to the camera
        gap, width = int(self._opening / OPEN * 40 * size / 128), max(1, 6 * size // 128)
        mid, top = size // 2, size * 3 // 4
        image[top:, mid - gap - width:mid - gap] = _FINGER
        image[top:, mid + gap:mid + gap + width] = _FINGER
        return image


TAGS = adapt.EnvTags(
    observation={
        "agentview": adapt.ImageTag(adapt.IMAGE_PRIMARY),
        "wrist": adapt.ImageTag(adapt.IMAGE_WRIST),
        "eef_pos": adapt.StateTag(adapt.EEF_POS, frame="world"),
        "eef_quat": adapt.StateTag(adapt.EEF_ROT, encoding="quat_wxyz", frame="world"),
        "gripper": adapt.StateTag(adapt.GRIPPER_POS),
        "instruction": adapt.TextTag(adapt.INSTRUCTION),
    },
    action=adapt.Action(
        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3, clip=True, frame="world"),
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=3, encoding="axis_angle", frame="world"),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, range=(-1.0, 1.0)),
    ),
)
"""What the env's observation leaves and action slices mean, by role."""


def tagged_env(max_steps: int = 80, camera: int = SIZE) -> TabletopEnv:
    """A fresh env with :data:`TAGS` stamped on its metadata (for ``rlmesh.make_vec`` and
    ``rlmesh serve env:tagged_env --kwargs '{"camera": 96}'``)."""
    return adapt.tag(TabletopEnv(max_steps, camera), TAGS)  # type: ignore[no-any-return]
