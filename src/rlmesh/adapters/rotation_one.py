"""One rotation at a time: the conversions of :mod:`.rotations` on plain Python floats.

An adapter converts a single rotation per step (a proprio quaternion, an action's turn). The
vectorised NumPy code of :mod:`.rotations` spends most of that time dispatching dozens of tiny
array operations; the same math on scalars with :mod:`math` is several times faster. Every
function here follows its batched twin exactly (the same conventions, normalisation, pivots,
small-angle series and degenerate-input rules), and :func:`convert_one` is what
:func:`rlmesh.adapters.rotations.convert` runs on a 1-D input.

A matrix is a flat row-major tuple of nine floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["convert_one", "from_matrix_one", "to_matrix_one"]

Matrix = tuple[float, float, float, float, float, float, float, float, float]

_EPS = 1e-12
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _quat_to_matrix(x: float, y: float, z: float, w: float) -> Matrix:
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not norm > _EPS:
        return _IDENTITY
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))


def _matrix_to_quat(m: Matrix) -> tuple[float, float, float, float]:
    """Scalar-last unit quaternion (Shepperd's method, the same pivot rule, w >= 0)."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    trace = m00 + m11 + m22
    pivots = (m00, m11, m22, trace)
    best = pivots.index(max(pivots))  # the first largest, as argmax picks
    if best == 0:
        q = (1 + 2 * m00 - trace, m10 + m01, m02 + m20, m21 - m12)
    elif best == 1:
        q = (m10 + m01, 1 + 2 * m11 - trace, m21 + m12, m02 - m20)
    elif best == 2:
        q = (m02 + m20, m21 + m12, 1 + 2 * m22 - trace, m10 - m01)
    else:
        q = (m21 - m12, m02 - m20, m10 - m01, 1 + trace)
    norm = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    sign = -1.0 if q[3] / norm < 0 else 1.0
    return (sign * q[0] / norm, sign * q[1] / norm, sign * q[2] / norm, sign * q[3] / norm)


def _rotvec_to_matrix(x: float, y: float, z: float) -> Matrix:
    theta2 = x * x + y * y + z * z
    theta = math.sqrt(theta2)
    if theta < 1e-4:
        a, b = 1 - theta2 / 6, 0.5 - theta2 / 24
    else:
        a, b = math.sin(theta) / theta, (1 - math.cos(theta)) / (theta * theta)
    # I + a K + b K^2 with K the skew matrix of (x, y, z); K^2 = v v^T - theta2 I.
    return (1 + b * (x * x - theta2), -a * z + b * x * y, a * y + b * x * z,
            a * z + b * x * y, 1 + b * (y * y - theta2), -a * x + b * y * z,
            -a * y + b * x * z, a * x + b * y * z, 1 + b * (z * z - theta2))


def _quat_to_rotvec(q: tuple[float, float, float, float]) -> tuple[float, float, float]:
    x, y, z, w = q
    n = math.sqrt(x * x + y * y + z * z)
    factor = 2.0 / max(w, _EPS) if n < 1e-8 else 2.0 * math.atan2(n, w) / n
    return (x * factor, y * factor, z * factor)


def _euler_to_matrix(roll: float, pitch: float, yaw: float) -> Matrix:
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr,
            sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr,
            -sp, cp * sr, cp * cr)


def _matrix_to_euler(m: Matrix) -> tuple[float, float, float]:
    cos_pitch = math.hypot(m[7], m[8])
    pitch = math.atan2(-m[6], cos_pitch)
    if cos_pitch < 1e-9:
        return (0.0, pitch, math.atan2(-m[1], m[4]))
    return (math.atan2(m[7], m[8]), pitch, math.atan2(m[3], m[0]))


def _columns_to_matrix(a: Sequence[float], b: Sequence[float]) -> Matrix:
    """Gram-Schmidt on two columns; a zero or collinear pair gives the identity."""
    na = math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    scale = na if na > _EPS else 1.0
    c1 = (a[0] / scale, a[1] / scale, a[2] / scale)
    dot = c1[0] * b[0] + c1[1] * b[1] + c1[2] * b[2]
    p = (b[0] - dot * c1[0], b[1] - dot * c1[1], b[2] - dot * c1[2])
    nb = math.sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])
    if na <= _EPS or nb <= _EPS:
        return _IDENTITY
    c2 = (p[0] / nb, p[1] / nb, p[2] / nb)
    c3 = (c1[1] * c2[2] - c1[2] * c2[1], c1[2] * c2[0] - c1[0] * c2[2],
          c1[0] * c2[1] - c1[1] * c2[0])
    return (c1[0], c2[0], c3[0], c1[1], c2[1], c3[1], c1[2], c2[2], c3[2])


def to_matrix_one(v: Sequence[float], encoding: str) -> Matrix:
    """Decode one rotation (a source encoding, already checked) to a row-major matrix."""
    if encoding == "quat_xyzw":
        return _quat_to_matrix(v[0], v[1], v[2], v[3])
    if encoding == "quat_wxyz":
        return _quat_to_matrix(v[1], v[2], v[3], v[0])
    if encoding == "axis_angle":
        return _rotvec_to_matrix(v[0], v[1], v[2])
    if encoding == "euler_xyz":
        return _euler_to_matrix(v[0], v[1], v[2])
    if encoding == "rot6d":
        return _columns_to_matrix(v[0:3], v[3:6])
    return _columns_to_matrix(v[0::2], v[1::2])


def from_matrix_one(m: Matrix, encoding: str) -> tuple[float, ...]:
    """Encode one row-major matrix (any encoding, already checked)."""
    if encoding in ("quat_xyzw", "quat_wxyz", "axis_angle"):
        q = _matrix_to_quat(m)
        if encoding == "axis_angle":
            return _quat_to_rotvec(q)
        return q if encoding == "quat_xyzw" else (q[3], q[0], q[1], q[2])
    if encoding == "euler_xyz":
        return _matrix_to_euler(m)
    if encoding == "rot6d":
        return (m[0], m[3], m[6], m[1], m[4], m[7])
    if encoding == "rot6d_rowmajor":
        return (m[0], m[1], m[3], m[4], m[6], m[7])
    return (-m[6], -m[7], -m[8])


def convert_one(v: Sequence[float], src: str, dst: str) -> tuple[float, ...]:
    """Convert one rotation between two checked encodings (``src != dst``)."""
    return from_matrix_one(to_matrix_one(v, src), dst)
