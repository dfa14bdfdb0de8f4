"""Rotation encodings and the conversions between them, in NumPy over the last axis.

Every encoding goes through a 3x3 rotation matrix: :func:`to_matrix` decodes, :func:`from_matrix`
encodes and :func:`convert` chains the two. The math is float64 and vectorised; any leading
axes are batch axes. The conventions:

* ``quat_xyzw`` / ``quat_wxyz``: a unit quaternion, scalar last / first. Inputs are normalised
  first; outputs have a non-negative scalar part.
* ``axis_angle``: the rotation vector (unit axis times the angle in radians, angle in [0, pi]).
* ``rot6d``: the first two columns of the matrix, ``[r00, r10, r20, r01, r11, r21]``; decoded
  by Gram-Schmidt, so any two independent vectors give a rotation.
* ``rot6d_rowmajor``: the same two columns packed row by row, ``[r00, r01, r10, r11, r20, r21]``.
* ``euler_xyz``: extrinsic roll-pitch-yaw, ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.
* ``gravity_xyz``: world gravity ``(0, 0, -1)`` seen in the body frame, ``R.T @ (0, 0, -1)``.
  It loses the yaw, so it is a target only: nothing converts from it.

Degenerate inputs (a zero quaternion, a zero or collinear ``rot6d`` column) decode to the
identity rather than to NaN.

:func:`convert` on a single 1-D rotation runs the same math on Python floats
(:mod:`.rotation_one`), which is several times faster than the batched code on one vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlmesh.adapters.roles import ROTATION_DIMS
from rlmesh.adapters.rotation_one import convert_one
from rlmesh.errors import AdapterResolutionError, AdapterSpecError

__all__ = ["ENCODINGS", "SOURCE_ENCODINGS", "check_pair", "convert", "from_matrix", "to_matrix"]

Float = NDArray[np.float64]

#: Every encoding :func:`from_matrix` can write.
ENCODINGS: tuple[str, ...] = tuple(ROTATION_DIMS)
#: The encodings :func:`to_matrix` can read (all but ``gravity_xyz``).
SOURCE_ENCODINGS: tuple[str, ...] = tuple(e for e in ENCODINGS if e != "gravity_xyz")

_EPS = 1e-12


def _width(encoding: str, *, source: bool) -> int:
    if encoding not in ROTATION_DIMS:
        raise AdapterSpecError(f"unknown rotation encoding {encoding!r}; one of "
                               f"{', '.join(ENCODINGS)}")
    if source and encoding == "gravity_xyz":
        raise AdapterSpecError("gravity_xyz keeps only the tilt (the yaw is lost): it can be "
                               "converted to, never from")
    return ROTATION_DIMS[encoding]


def _vectors(value: Any, width: int, encoding: str) -> Float:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != width:
        raise AdapterSpecError(f"a {encoding} rotation has {width} numbers on its last axis, "
                               f"got shape {array.shape}")
    return array


def check_pair(src: str, dst: str) -> None:
    """Fail early when ``src`` cannot be converted to ``dst``.

    Args:
        src: The encoding the values arrive in.
        dst: The encoding wanted.

    Raises:
        AdapterResolutionError: If either name is unknown, or ``src`` is ``gravity_xyz``.
    """
    try:
        _width(src, source=True)
        _width(dst, source=False)
    except AdapterSpecError as exc:
        raise AdapterResolutionError(f"cannot convert rotations {src} -> {dst}: {exc}") from None


def _quat_to_matrix(q: Float) -> Float:
    """Matrices of scalar-last quaternions (normalised here; zero gives the identity)."""
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    unit = np.where(norm > _EPS, q / np.where(norm > _EPS, norm, 1.0), [0.0, 0.0, 0.0, 1.0])
    x, y, z, w = np.moveaxis(unit, -1, 0)
    rows = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _matrix_to_quat(m: Float) -> Float:
    """Scalar-last unit quaternions of rotation matrices (Shepperd's method, w >= 0)."""
    diag = np.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], axis=-1)
    trace = diag.sum(axis=-1)
    # Four candidate quaternions, each accurate where its pivot (4w^2, 4x^2, ...) is large.
    cands = np.stack([
        np.stack([1 + 2 * diag[..., 0] - trace, m[..., 1, 0] + m[..., 0, 1],
                  m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], axis=-1),
        np.stack([m[..., 1, 0] + m[..., 0, 1], 1 + 2 * diag[..., 1] - trace,
                  m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0]], axis=-1),
        np.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2],
                  1 + 2 * diag[..., 2] - trace, m[..., 1, 0] - m[..., 0, 1]], axis=-1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                  m[..., 1, 0] - m[..., 0, 1], 1 + trace], axis=-1),
    ], axis=-2)
    pivots = np.concatenate([diag, trace[..., None]], axis=-1)
    best = np.argmax(pivots, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.asarray(np.where(q[..., 3:4] < 0, -q, q), dtype=np.float64)


def _skew(v: Float) -> Float:
    zero = np.zeros(v.shape[:-1])
    x, y, z = np.moveaxis(v, -1, 0)
    return np.stack([np.stack([zero, -z, y], axis=-1), np.stack([z, zero, -x], axis=-1),
                     np.stack([-y, x, zero], axis=-1)], axis=-2)


def _rotvec_to_matrix(v: Float) -> Float:
    """Rodrigues' formula, with Taylor series for the two coefficients at small angles."""
    theta2 = np.sum(v * v, axis=-1)
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1 - theta2 / 6, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24, (1 - np.cos(safe)) / (safe * safe))
    k = _skew(v)
    out: Float = np.eye(3) + a[..., None, None] * k + b[..., None, None] * (k @ k)
    return out


def _quat_to_rotvec(q: Float) -> Float:
    """Rotation vectors of scalar-last unit quaternions with w >= 0 (angle in [0, pi])."""
    xyz, w = q[..., :3], q[..., 3]
    n = np.linalg.norm(xyz, axis=-1)
    small = n < 1e-8
    factor = np.where(small, 2.0 / np.maximum(w, _EPS),
                      2.0 * np.arctan2(n, w) / np.where(small, 1.0, n))
    return xyz * factor[..., None]


def _euler_to_matrix(e: Float) -> Float:
    cr, sr = np.cos(e[..., 0]), np.sin(e[..., 0])
    cp, sp = np.cos(e[..., 1]), np.sin(e[..., 1])
    cy, sy = np.cos(e[..., 2]), np.sin(e[..., 2])
    rows = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr]]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _matrix_to_euler(m: Float) -> Float:
    """Roll, pitch, yaw; at gimbal lock (pitch = +-pi/2) the roll is set to 0."""
    cos_pitch = np.hypot(m[..., 2, 1], m[..., 2, 2])
    pitch = np.arctan2(-m[..., 2, 0], cos_pitch)
    locked = cos_pitch < 1e-9
    roll = np.where(locked, 0.0, np.arctan2(m[..., 2, 1], m[..., 2, 2]))
    yaw = np.where(locked, np.arctan2(-m[..., 0, 1], m[..., 1, 1]),
                   np.arctan2(m[..., 1, 0], m[..., 0, 0]))
    return np.stack([roll, pitch, yaw], axis=-1)


def _columns_to_matrix(a: Float, b: Float) -> Float:
    """Gram-Schmidt on two column vectors; a zero or collinear pair gives the identity."""
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    c1 = a / np.where(na > _EPS, na, 1.0)
    b_perp = b - np.sum(c1 * b, axis=-1, keepdims=True) * c1
    nb = np.linalg.norm(b_perp, axis=-1, keepdims=True)
    c2 = b_perp / np.where(nb > _EPS, nb, 1.0)
    m = np.stack([c1, c2, np.cross(c1, c2)], axis=-1)
    bad = ((na <= _EPS) | (nb <= _EPS))[..., 0]
    return np.where(bad[..., None, None], np.eye(3), m)


def to_matrix(value: Any, encoding: str) -> Float:
    """Decode rotations to 3x3 matrices.

    Args:
        value: Array-like whose last axis holds one rotation in ``encoding``.
        encoding: A source encoding (any but ``gravity_xyz``).

    Returns:
        float64 matrices of shape ``value.shape[:-1] + (3, 3)``.

    Raises:
        AdapterSpecError: For an unknown encoding, ``gravity_xyz``, or a wrong last axis.
    """
    v = _vectors(value, _width(encoding, source=True), encoding)
    if encoding == "quat_xyzw":
        return _quat_to_matrix(v)
    if encoding == "quat_wxyz":
        return _quat_to_matrix(np.roll(v, -1, axis=-1))
    if encoding == "axis_angle":
        return _rotvec_to_matrix(v)
    if encoding == "euler_xyz":
        return _euler_to_matrix(v)
    if encoding == "rot6d":
        return _columns_to_matrix(v[..., 0:3], v[..., 3:6])
    return _columns_to_matrix(v[..., 0::2], v[..., 1::2])


def from_matrix(matrix: Any, encoding: str) -> Float:
    """Encode 3x3 rotation matrices.

    Args:
        matrix: Array-like of shape ``(..., 3, 3)``.
        encoding: Any encoding, ``gravity_xyz`` included.

    Returns:
        float64 values of shape ``matrix.shape[:-2] + (width,)``.

    Raises:
        AdapterSpecError: For an unknown encoding or a matrix that is not ``(..., 3, 3)``.
    """
    _width(encoding, source=False)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise AdapterSpecError(f"a rotation matrix is (..., 3, 3), got shape {m.shape}")
    if encoding in ("quat_xyzw", "quat_wxyz", "axis_angle"):
        q = _matrix_to_quat(m)
        if encoding == "axis_angle":
            return _quat_to_rotvec(q)
        return q if encoding == "quat_xyzw" else np.roll(q, 1, axis=-1)
    if encoding == "euler_xyz":
        return _matrix_to_euler(m)
    if encoding == "rot6d":
        return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)
    if encoding == "rot6d_rowmajor":
        return np.array(m[..., :, :2].reshape((*m.shape[:-2], 6)), dtype=np.float64)
    return -m[..., 2, :]


def convert(value: Any, src: str, dst: str) -> Float:
    """Convert rotations from one encoding to another over the last axis.

    Args:
        value: Array-like whose last axis holds one rotation in ``src``; leading axes batch.
        src: The encoding of ``value`` (any but ``gravity_xyz``).
        dst: The encoding wanted.

    Returns:
        float64 values in ``dst``. The same encoding returns the (float64) input unchanged.

    Raises:
        AdapterSpecError: For an unknown encoding, ``gravity_xyz`` as the source, or a last
            axis of the wrong width.
    """
    if src == dst:
        _width(dst, source=True)
        return _vectors(value, ROTATION_DIMS[src], src)
    v = _vectors(value, _width(src, source=True), src)
    _width(dst, source=False)
    if v.ndim == 1:
        return np.array(convert_one(v.tolist(), src, dst), dtype=np.float64)
    return from_matrix(to_matrix(v, src), dst)
