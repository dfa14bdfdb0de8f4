"""Rotation encodings: round trips, SciPy agreement, hand-checked values, degenerate inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rlmesh.adapters import rotations as rot
from rlmesh.errors import AdapterResolutionError, AdapterSpecError


def _random_matrices(n: int, seed: int = 0) -> np.ndarray:
    """Uniform random rotations, built from normalised Gaussian quaternions (no SciPy)."""
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return rot.to_matrix(q, "quat_xyzw")


def _yaw90() -> np.ndarray:
    return np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def test_random_matrices_are_rotations() -> None:
    m = _random_matrices(200)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(rot.SOURCE_ENCODINGS,
                                                                rot.SOURCE_ENCODINGS)))
def test_every_pair_round_trips_to_the_same_matrix(src: str, dst: str) -> None:
    m = _random_matrices(300, seed=len(src) * 7 + len(dst))
    value = rot.from_matrix(m, src)
    there = rot.convert(value, src, dst)
    assert there.dtype == np.float64 and there.shape == (300, rot.ROTATION_DIMS[dst])
    back = rot.convert(there, dst, src)
    assert np.allclose(rot.to_matrix(there, dst), m, atol=1e-9)
    assert np.allclose(rot.to_matrix(back, src), m, atol=1e-9)


def test_gravity_is_the_world_down_axis_in_the_body_frame() -> None:
    m = _random_matrices(50, seed=3)
    for src in rot.SOURCE_ENCODINGS:
        g = rot.convert(rot.from_matrix(m, src), src, "gravity_xyz")
        expected = np.einsum("nji,j->ni", m, [0.0, 0.0, -1.0])
        assert np.allclose(g, expected, atol=1e-9)
        assert np.allclose(np.linalg.norm(g, axis=-1), 1.0)
    # Upright body: gravity straight down; body pitched by +90 deg about y: gravity along +x.
    assert np.allclose(rot.convert([0, 0, 0, 1], "quat_xyzw", "gravity_xyz"), [0, 0, -1])
    assert np.allclose(rot.convert([0, np.pi / 2, 0], "euler_xyz", "gravity_xyz"), [1, 0, 0])


def test_nothing_converts_from_gravity() -> None:
    with pytest.raises(AdapterSpecError, match="gravity_xyz"):
        rot.convert([0.0, 0.0, -1.0], "gravity_xyz", "quat_xyzw")
    with pytest.raises(AdapterSpecError, match="gravity_xyz"):
        rot.to_matrix([0.0, 0.0, -1.0], "gravity_xyz")
    with pytest.raises(AdapterResolutionError, match="gravity_xyz -> rot6d"):
        rot.check_pair("gravity_xyz", "rot6d")
    with pytest.raises(AdapterResolutionError, match="unknown rotation encoding 'quat'"):
        rot.check_pair("quat_xyzw", "quat")
    rot.check_pair("quat_wxyz", "gravity_xyz")
    rot.check_pair("euler_xyz", "euler_xyz")


def test_bad_names_and_widths_are_typed_errors() -> None:
    with pytest.raises(AdapterSpecError, match="unknown rotation encoding"):
        rot.convert([1, 0, 0], "rpy", "axis_angle")
    with pytest.raises(AdapterSpecError, match="4 numbers on its last axis"):
        rot.convert([1, 0, 0], "quat_xyzw", "axis_angle")
    with pytest.raises(AdapterSpecError, match=r"\(\.\.\., 3, 3\)"):
        rot.from_matrix(np.eye(4), "rot6d")


def test_ninety_degree_yaw_by_hand() -> None:
    s = np.sqrt(0.5)
    expected = {
        "quat_xyzw": [0, 0, s, s], "quat_wxyz": [s, 0, 0, s], "axis_angle": [0, 0, np.pi / 2],
        "euler_xyz": [0, 0, np.pi / 2], "rot6d": [0, 1, 0, -1, 0, 0],
        "rot6d_rowmajor": [0, -1, 1, 0, 0, 0], "gravity_xyz": [0, 0, -1],
    }
    for encoding, value in expected.items():
        assert np.allclose(rot.from_matrix(_yaw90(), encoding), value, atol=1e-12), encoding
        if encoding != "gravity_xyz":
            assert np.allclose(rot.to_matrix(value, encoding), _yaw90(), atol=1e-12)
    # Rotating the x axis by that yaw gives the y axis.
    assert np.allclose(rot.to_matrix([0, 0, np.pi / 2], "axis_angle") @ [1, 0, 0], [0, 1, 0])


def test_euler_is_extrinsic_xyz() -> None:
    roll, pitch, yaw = 0.3, -0.4, 1.1
    rx = rot.to_matrix([roll, 0, 0], "euler_xyz")
    ry = rot.to_matrix([0, pitch, 0], "euler_xyz")
    rz = rot.to_matrix([0, 0, yaw], "euler_xyz")
    assert np.allclose(rot.to_matrix([roll, pitch, yaw], "euler_xyz"), rz @ ry @ rx)
    assert np.allclose(rot.convert([roll, pitch, yaw], "euler_xyz", "euler_xyz"),
                       [roll, pitch, yaw])


def test_gimbal_lock_still_round_trips() -> None:
    for pitch in (np.pi / 2, -np.pi / 2):
        m = rot.to_matrix([0.7, pitch, -0.2], "euler_xyz")
        e = rot.from_matrix(m, "euler_xyz")
        assert np.all(np.isfinite(e)) and e[0] == 0.0
        assert np.allclose(rot.to_matrix(e, "euler_xyz"), m, atol=1e-9)


def test_half_turn_axis_angle_keeps_its_axis() -> None:
    m = rot.to_matrix([np.pi, 0, 0], "axis_angle")
    assert np.allclose(m, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    v = rot.from_matrix(m, "axis_angle")
    assert np.allclose(np.abs(v), [np.pi, 0, 0], atol=1e-9)


def test_degenerate_inputs_give_the_identity_not_nan() -> None:
    for value, encoding in (([0, 0, 0, 0], "quat_xyzw"), ([0, 0, 0, 0], "quat_wxyz"),
                            ([0, 0, 0], "axis_angle"), (np.zeros(6), "rot6d"),
                            ([0, 0, 0, 1, 0, 0], "rot6d"), ([1, 0, 0, 0, 0, 0], "rot6d"),
                            ([2, 0, 0, 4, 0, 0], "rot6d"), (np.zeros(6), "rot6d_rowmajor")):
        assert np.array_equal(rot.to_matrix(value, encoding), np.eye(3)), (value, encoding)
    out = rot.convert(np.zeros((5, 4)), "quat_xyzw", "axis_angle")
    assert np.array_equal(out, np.zeros((5, 3)))
    tiny = rot.convert([1e-9, 0, 0], "axis_angle", "quat_xyzw")
    assert np.all(np.isfinite(tiny)) and np.allclose(tiny, [5e-10, 0, 0, 1])


def test_quaternions_are_normalised_and_sign_canonical() -> None:
    s = np.sqrt(0.5)
    assert np.allclose(rot.to_matrix([0, 0, 5, 5], "quat_xyzw"), _yaw90())
    assert np.allclose(rot.to_matrix([0, 0, -s, -s], "quat_xyzw"), _yaw90())
    q = rot.convert([0, 0, -3, -3], "quat_xyzw", "quat_wxyz")
    assert np.allclose(q, [s, 0, 0, s])


def test_rot6d_gram_schmidt_orthonormalises() -> None:
    m = rot.to_matrix([2, 0, 0, 1, 3, 0], "rot6d")
    assert np.allclose(m, np.eye(3))
    noisy = rot.from_matrix(_random_matrices(20, 9), "rot6d") + 0.05
    mats = rot.to_matrix(noisy, "rot6d")
    assert np.allclose(mats @ np.swapaxes(mats, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(mats), 1.0)
    # Row-major packing of the same two columns.
    row = rot.convert([1, 2, 3, 4, 5, 6], "rot6d", "rot6d_rowmajor")
    col = rot.from_matrix(rot.to_matrix([1, 2, 3, 4, 5, 6], "rot6d"), "rot6d")
    assert np.allclose(row, col[[0, 3, 1, 4, 2, 5]])


def test_leading_batch_axes() -> None:
    m = _random_matrices(24, seed=5).reshape(2, 3, 4, 3, 3)
    q = rot.from_matrix(m, "quat_wxyz")
    assert q.shape == (2, 3, 4, 4)
    six = rot.convert(q, "quat_wxyz", "rot6d")
    assert six.shape == (2, 3, 4, 6)
    assert np.allclose(rot.to_matrix(six, "rot6d"), m)
    assert rot.convert(q[0, 0, 0], "quat_wxyz", "gravity_xyz").shape == (3,)


def test_agrees_with_scipy() -> None:
    transform = pytest.importorskip("scipy.spatial.transform")
    r = transform.Rotation.random(500, random_state=11)
    m = r.as_matrix()
    assert np.allclose(rot.to_matrix(r.as_quat(), "quat_xyzw"), m)
    assert np.allclose(rot.to_matrix(r.as_rotvec(), "axis_angle"), m)
    assert np.allclose(rot.to_matrix(r.as_euler("xyz"), "euler_xyz"), m)
    assert np.allclose(rot.from_matrix(m, "axis_angle"), r.as_rotvec())
    assert np.allclose(rot.from_matrix(m, "euler_xyz"), r.as_euler("xyz"))
    q = r.as_quat()
    q = np.where(q[:, 3:] < 0, -q, q)
    assert np.allclose(rot.from_matrix(m, "quat_xyzw"), q)
    assert np.allclose(rot.convert(r.as_euler("xyz"), "euler_xyz", "quat_wxyz"),
                       np.roll(q, 1, axis=-1))
    assert np.allclose(rot.from_matrix(m, "gravity_xyz"), r.inv().apply([0, 0, -1]))


def _batched(value: np.ndarray, src: str, dst: str) -> np.ndarray:
    """The batched NumPy path on the same rotations (a leading axis keeps it off the 1-D path)."""
    return rot.from_matrix(rot.to_matrix(value, src), dst)


@pytest.mark.parametrize(("src", "dst"), [(s, d) for s, d in itertools.product(
    rot.SOURCE_ENCODINGS, rot.ENCODINGS) if s != d])
def test_the_single_vector_path_equals_the_batched_path(src: str, dst: str) -> None:
    m = _random_matrices(64, seed=3 + len(src) * 5 + len(dst))
    rng = np.random.default_rng(len(src) + 17 * len(dst))
    values = rot.from_matrix(m, src)
    if src.startswith("quat"):
        values = values * rng.uniform(0.2, 3.0, (64, 1))  # not unit: normalised on the way in
    if src.startswith("rot6d"):
        values = values + rng.normal(scale=0.1, size=values.shape)  # not orthonormal
    if src == "axis_angle":
        values[:4] *= 1e-6  # the small-angle series
    batched = _batched(values, src, dst)
    one = np.stack([rot.convert(v, src, dst) for v in values])
    assert one.dtype == np.float64 and one.shape == batched.shape
    if dst in ("quat_xyzw", "quat_wxyz", "axis_angle"):  # q and -q: compare as matrices too
        assert np.allclose(rot.to_matrix(one, dst), rot.to_matrix(batched, dst), atol=1e-6)
    assert np.allclose(one, batched, atol=1e-6)


@pytest.mark.parametrize("src", rot.SOURCE_ENCODINGS)
def test_the_single_vector_path_keeps_the_degenerate_rules(src: str) -> None:
    zero = np.zeros(rot.ROTATION_DIMS[src])
    other = "rot6d" if src != "rot6d" else "quat_wxyz"
    assert np.allclose(rot.convert(zero, src, other), _batched(zero[None], src, other)[0])
    half_turn = rot.from_matrix(np.diag([1.0, -1.0, -1.0]), src)  # a pivot other than w
    for dst in (d for d in rot.ENCODINGS if d != src):
        assert np.allclose(rot.convert(half_turn, src, dst),
                           _batched(half_turn[None], src, dst)[0], atol=1e-9)
    gimbal = rot.from_matrix(rot.to_matrix([0.3, np.pi / 2, -0.4], "euler_xyz"), src)
    assert np.allclose(rot.convert(gimbal, src, "euler_xyz"),
                       _batched(gimbal[None], src, "euler_xyz")[0], atol=1e-6)
