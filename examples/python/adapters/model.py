"""A model written in its own conventions, with no knowledge of any particular env.

Like a typical vision-language-action checkpoint, it wants:

* two cameras at 128x128 as 8-bit RGB (height, width, channel), the scene camera under
  ``"image"`` and the wrist camera under ``"wrist_image"``, which it normalizes itself (as most
  VLA processors do);
* a 10-number ``"proprio"`` vector: end-effector position, its orientation as the first two
  columns of the rotation matrix (``rot6d``) and the gripper opening scaled to ``[0, 1]``;
* the instruction under ``"language"``;

and it answers with 10 numbers: a position delta in metres, a rotation delta in ``rot6d`` and
a gripper command where ``1`` closes and ``0`` opens. :data:`SPEC` declares all of that by role,
so an adapter can be resolved against any env that tags its spaces.

The policy itself is scripted rather than learned, but it is a real closed loop: it finds the
red cube and the green pad in the scene camera, reads where its gripper is from the proprio
vector, flies over the cube, descends, closes, carries the cube to the pad and lets go, turning
its wrist back to a zero yaw on the way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rlmesh.adapters as adapt

IMAGE = 128
HALF_TABLE = 0.4  # the scene camera's calibration: it sees x, y in [-0.4, 0.4] metres
CARRY_HEIGHT = 0.1
GRASP_HEIGHT = 0.04
MAX_TURN = 0.2

SPEC = adapt.ModelSpec(
    input={
        "image": adapt.Image(adapt.IMAGE_PRIMARY, size=IMAGE, channels=3),
        "wrist_image": adapt.Image(adapt.IMAGE_WRIST, size=IMAGE, channels=3),
        "proprio": adapt.Concat(adapt.EEF_POS, adapt.State(adapt.EEF_ROT, encoding="rot6d"),
                                adapt.State(adapt.GRIPPER_POS, range=(0.0, 1.0))),
        "language": adapt.Text(adapt.INSTRUCTION),
    },
    output=adapt.Action(
        adapt.Actuator(adapt.ACTION_DELTA_POS, dim=3),
        adapt.Actuator(adapt.ACTION_DELTA_ROT, dim=6, encoding="rot6d"),
        adapt.Actuator(adapt.ACTION_GRIPPER, dim=1, range=(0.0, 1.0), binary=True,
                       invert=True),
    ),
)
"""What the model ingests and emits, by role."""


def locate(mask: np.ndarray) -> np.ndarray | None:
    """The table point (x, y) at the centre of a scene-camera pixel mask (None if empty)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    size = mask.shape[0]
    scale = 2 * HALF_TABLE / size
    return np.array([(cols.mean() + 0.5) * scale - HALF_TABLE,
                     HALF_TABLE - (rows.mean() + 0.5) * scale])


def decide(cube: np.ndarray | None, goal: np.ndarray | None, eef: np.ndarray,
           opening: float) -> tuple[np.ndarray, bool]:
    """The scripted plan: where to move next (a position delta) and whether to close.

    Args:
        cube: The cube's table position, as seen (``None``: not seen).
        goal: The pad's table position, as seen.
        eef: The gripper's position.
        opening: The finger opening, 0 (closed) to 1 (open).
    """
    if cube is None or goal is None:
        return np.array([0.0, 0.0, CARRY_HEIGHT - eef[2]]), False
    off_cube = float(np.linalg.norm(cube - eef[:2]))
    if opening < 0.3:  # closed on nothing: open and back up
        return np.array([0.0, 0.0, CARRY_HEIGHT - eef[2]]), False
    if opening < 0.9 and off_cube < 0.03:  # holding it: carry it to the pad
        off_goal = goal - eef[:2]
        if float(np.linalg.norm(off_goal)) > 0.015:
            return np.array([*off_goal, CARRY_HEIGHT - eef[2]]), True
        return np.array([0.0, 0.0, 0.05 - eef[2]]), eef[2] > 0.07
    if off_cube > 0.015:  # fly over the cube
        height = CARRY_HEIGHT if off_cube > 0.05 else eef[2]
        return np.array([*(cube - eef[:2]), height - eef[2]]), False
    return np.array([*(cube - eef[:2]), GRASP_HEIGHT - 0.015 - eef[2]]), eef[2] < 0.05


def yaw_turn(yaw: float) -> float:
    """The yaw change (radians) this step, turning the wrist back toward zero."""
    return float(np.clip(-yaw, -MAX_TURN, MAX_TURN))


def predict(payload: dict[str, Any]) -> np.ndarray:
    """One action in the model's format, from a payload in the model's format."""
    image = np.asarray(payload["image"], np.float32) / 255.0  # (128, 128, 3) uint8 RGB
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    cube = locate((red > 0.6) & (green < 0.35) & (blue < 0.35))
    goal = locate((green > 0.55) & (red < 0.4) & (blue < 0.4))
    proprio = np.asarray(payload["proprio"], np.float64)
    eef, rot6d, opening = proprio[:3], proprio[3:9], float(proprio[9])
    move, close = decide(cube, goal, eef, opening)
    yaw = float(np.arctan2(rot6d[1], rot6d[0]))  # first column of the rotation matrix
    turn = yaw_turn(yaw)
    c, s = np.cos(turn), np.sin(turn)
    delta_rot6d = [c, s, 0.0, -s, c, 0.0]  # a turn about z: its first two matrix columns
    return np.array([*np.clip(move, -0.05, 0.05), *delta_rot6d, 1.0 if close else 0.0],
                    np.float32)
