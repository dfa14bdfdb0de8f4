"""The image pipeline: planning rules, filters against references, values, layout, blanks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from rlmesh.adapters.images import Camera, plan_image
from rlmesh.adapters.model_leaves import RESAMPLES, Image
from rlmesh.adapters.resize import interleave, plan_axis, resize_hwc
from rlmesh.errors import AdapterResolutionError, TensorError


def _camera(shape: tuple[int, int, int], *, layout: str = "hwc", dtype: Any = np.uint8,
            low: float | None = 0, high: float | None = 255,
            upside_down: bool = False) -> Camera:
    return Camera("agentview_image", "image/primary", shape, layout, np.dtype(dtype), low, high,
                  upside_down)


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _cv2_linear_reference(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """A slow, per-pixel INTER_LINEAR written from its definition (half-pixel centres)."""
    src_h, src_w = img.shape[:2]
    out = np.zeros((height, width, img.shape[2]))

    def taps(i: int, scale: float, size: int) -> tuple[int, int, float]:
        pos = (i + 0.5) * scale - 0.5
        left = math.floor(pos)
        frac = pos - left
        if left < 0:
            return 0, 0, 0.0
        if left >= size - 1:
            return size - 1, size - 1, 0.0
        return left, left + 1, frac

    for y in range(height):
        y0, y1, fy = taps(y, src_h / height, src_h)
        for x in range(width):
            x0, x1, fx = taps(x, src_w / width, src_w)
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[y, x] = top * (1 - fy) + bottom * fy
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


# -- the no-op path ------------------------------------------------------------------------


def test_nothing_to_do_returns_the_frame_itself() -> None:
    frame = _noise((48, 64, 3))
    pipe = plan_image(Image(), _camera((48, 64, 3)), "image")
    assert pipe(frame) is frame
    assert pipe.steps == () and pipe.advisories == () and not pipe.blank
    assert pipe.out_shape == (48, 64, 3) and pipe.out_dtype == np.uint8
    chw = np.ascontiguousarray(frame.transpose(2, 0, 1))
    same_layout = plan_image(Image(layout="chw", height=48, width=64, channels=3),
                             _camera((3, 48, 64), layout="chw"), "image")
    assert same_layout(chw) is chw
    floats = np.random.default_rng(1).random((48, 64, 3)).astype(np.float32)
    unit = plan_image(Image(dtype="float32", normalize=True),
                      _camera((48, 64, 3), dtype=np.float32, low=0.0, high=1.0), "image")
    assert unit(floats) is floats


def test_a_frame_of_the_wrong_shape_is_refused() -> None:
    pipe = plan_image(Image(), _camera((48, 64, 3)), "image")
    with pytest.raises(TensorError, match=r"\(48, 64, 4\)"):
        pipe(np.zeros((48, 64, 4), np.uint8))


# -- resize values -------------------------------------------------------------------------


def test_bilinear_downscale_and_upscale_by_hand() -> None:
    ramp = np.array([0, 10, 20, 30], np.uint8)
    frame = np.broadcast_to(ramp[None, :, None], (4, 4, 1)).copy()
    down = plan_image(Image(size=2), _camera((4, 4, 1)), "image")(frame)
    assert down[:, :, 0].tolist() == [[5, 25], [5, 25]]
    two = np.broadcast_to(np.array([0, 100], np.uint8)[None, :, None], (2, 2, 1)).copy()
    up = plan_image(Image(size=4, allow_upscale=True), _camera((2, 2, 1)), "image")(two)
    assert up[0, :, 0].tolist() == [0, 25, 75, 100]
    assert (up == up[:1]).all()


@pytest.mark.parametrize(("src", "dst"), [((40, 50), (17, 23)), ((20, 30), (45, 61)),
                                          ((33, 33), (33, 20)), ((64, 48), (32, 24))])
def test_bilinear_matches_an_independent_reference(src: tuple[int, int],
                                                   dst: tuple[int, int]) -> None:
    frame = _noise((*src, 3), seed=src[0])
    leaf = Image(height=dst[0], width=dst[1], fit="stretch", allow_upscale=True)
    got = plan_image(leaf, _camera((*src, 3)), "image")(frame)
    expected = _cv2_linear_reference(frame, *dst)
    assert np.abs(got.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("resample", ["bilinear", "area", "nearest"])
def test_opencv_filters_match_opencv(resample: str) -> None:
    cv2 = pytest.importorskip("cv2")
    flags = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST}
    for src, dst in (((60, 80), (24, 32)), ((30, 40), (45, 60)), ((50, 70), (20, 28))):
        frame = _noise((*src, 3), seed=src[1])
        leaf = Image(height=dst[0], width=dst[1], resample=resample, allow_upscale=True)
        got = plan_image(leaf, _camera((*src, 3)), "image")(frame)
        expected = cv2.resize(frame, (dst[1], dst[0]), interpolation=flags[resample])
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_area_shrink_averages_blocks_and_nearest_picks_pixels() -> None:
    frame = _noise((8, 12, 3), seed=4)
    area = plan_image(Image(height=4, width=6, resample="area"), _camera((8, 12, 3)), "k")(frame)
    blocks = frame.reshape(4, 2, 6, 2, 3).astype(float).mean(axis=(1, 3))
    assert np.array_equal(area, np.floor(blocks + 0.5).astype(np.uint8))
    near = plan_image(Image(height=4, width=6, resample="nearest"), _camera((8, 12, 3)),
                      "k")(frame)
    assert np.array_equal(near, frame[::2, ::2])


@pytest.mark.parametrize("resample", ["bilinear_aa", "bicubic_aa", "lanczos3_aa"])
def test_antialiased_filters_match_pillow(resample: str) -> None:
    pil = pytest.importorskip("PIL.Image")
    filters = {"bilinear_aa": pil.BILINEAR, "bicubic_aa": pil.BICUBIC,
               "lanczos3_aa": pil.LANCZOS}
    for src, dst in (((64, 80), (32, 40)), ((60, 70), (23, 51)), ((30, 40), (64, 90)),
                     ((96, 96), (84, 84))):
        frame = _noise((*src, 3), seed=dst[0])
        leaf = Image(height=dst[0], width=dst[1], resample=resample, fit="stretch",
                     allow_upscale=True)
        got = plan_image(leaf, _camera((*src, 3)), "image")(frame)
        expected = np.asarray(pil.fromarray(frame).resize((dst[1], dst[0]), filters[resample]))
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_a_centre_crop_is_sampled_like_pillow_box() -> None:
    pil = pytest.importorskip("PIL.Image")
    frame = _noise((50, 50, 3), seed=8)
    leaf = Image(size=24, crop_area=0.81, resample="lanczos3_aa")
    pipe = plan_image(leaf, _camera((50, 50, 3)), "image")
    side = 50 * 0.9
    box = ((50 - side) / 2, (50 - side) / 2, (50 + side) / 2, (50 + side) / 2)
    expected = np.asarray(pil.fromarray(frame).resize((24, 24), pil.LANCZOS, box=box))
    assert np.abs(pipe(frame).astype(int) - expected).max() <= 1
    assert "centre crop 0.9 (45x45 box)" in pipe.steps


@pytest.mark.parametrize("resample", RESAMPLES)
def test_a_constant_image_stays_exactly_constant(resample: str) -> None:
    for value in (0, 1, 77, 254, 255):
        frame = np.full((30, 40, 3), value, np.uint8)
        for size in (12, 17, 64):
            leaf = Image(height=size, width=size, fit="stretch", resample=resample,
                         allow_upscale=True)
            out = plan_image(leaf, _camera((30, 40, 3)), "image")(frame)
            assert out.dtype == np.uint8 and (out == value).all(), (resample, value, size)
    floats = np.full((30, 40, 3), 0.3, np.float32)
    leaf = Image(size=17, fit="stretch", resample=resample, dtype="float32")
    camera = _camera((30, 40, 3), dtype=np.float32, low=0.0, high=1.0)
    out = plan_image(leaf, camera, "image")(floats)
    assert out.dtype == np.float32 and (out == np.float32(0.3)).all()


def test_resize_tables_are_planned_once_and_same_size_is_a_slice() -> None:
    plan = plan_axis(10, (0.0, 10.0), 10, "lanczos3_aa")
    assert plan.start == 0 and plan.index.size == 0
    shrink = plan_axis(10, (0.0, 10.0), 5, "bilinear")
    assert shrink.start is None and shrink.index.shape == (5, 2)
    assert np.allclose(shrink.weight.sum(axis=1), 1.0)
    frame = _noise((10, 10, 2))
    view = resize_hwc(frame, plan_axis(10, (2.0, 8.0), 6, "bilinear"),
                      interleave(plan_axis(10, (1.0, 9.0), 8, "area"), 2), "bilinear", 2)
    assert np.shares_memory(view, frame) and np.array_equal(view, frame[2:8, 1:9])


# -- geometry rules ------------------------------------------------------------------------


def test_an_aspect_mismatch_without_fit_stretches_with_a_warning() -> None:
    pipe = plan_image(Image(size=32), _camera((48, 64, 3)), "image")
    (note,) = pipe.advisories
    assert note.level == "warn" and "48x64" in note and "32x32" in note and "fit=" in note
    stretched = plan_image(Image(size=32, fit="stretch"), _camera((48, 64, 3)), "image")
    assert not stretched.advisories
    frame = _noise((48, 64, 3))
    assert np.array_equal(pipe(frame), stretched(frame))
    # One pixel of rounding is not a mismatch.
    pipe = plan_image(Image(height=25, width=32), _camera((48, 64, 3)), "image")
    assert pipe.out_shape == (25, 32, 3)


def test_an_unacknowledged_upscale_is_planned_with_a_warning() -> None:
    quiet = plan_image(Image(height=96, width=128), _camera((48, 64, 3)), "image")
    (note,) = quiet.advisories
    assert note.level == "warn" and "'image'" in note and "upscaled" in note
    assert "allow_upscale" in note
    assert quiet(_noise((48, 64, 3))).shape == (96, 128, 3)
    pipe = plan_image(Image(height=96, width=128, allow_upscale=True), _camera((48, 64, 3)),
                      "image")
    assert not pipe.advisories
    assert np.array_equal(pipe(_noise((48, 64, 3))), quiet(_noise((48, 64, 3))))
    # The box a crop leaves is what the target is measured against.
    cropped = plan_image(Image(size=40, crop=0.5), _camera((64, 64, 3)), "image")
    assert any("upscaled" in note for note in cropped.advisories)
    assert not plan_image(Image(size=32, crop=0.5), _camera((64, 64, 3)), "image").advisories


def test_fit_crop_keeps_the_centre_and_warns() -> None:
    frame = _noise((8, 16, 3), seed=2)
    pipe = plan_image(Image(size=8, fit="crop"), _camera((8, 16, 3)), "wrist")
    out = pipe(frame)
    assert np.array_equal(out, frame[:, 4:12]) and out.flags.c_contiguous
    assert "crop to 1:1 (fit=crop)" in pipe.steps
    (note,) = pipe.advisories
    assert note.level == "warn" and note.path == "wrist" and "discarded" in note


def test_fit_pad_letterboxes_with_black_and_warns() -> None:
    frame = _noise((8, 16, 3), seed=3) | 1
    pipe = plan_image(Image(size=16, fit="pad", allow_upscale=False), _camera((8, 16, 3)), "k")
    out = pipe(frame)
    assert out.shape == (16, 16, 3)
    assert (out[:4] == 0).all() and (out[12:] == 0).all()
    assert np.array_equal(out[4:12], frame)
    (note,) = pipe.advisories
    assert note.level == "warn" and "border" in note
    assert "pad 8x16->16x16 (fit=pad)" in pipe.steps
    normalized = plan_image(Image(size=16, fit="pad", normalize=(-1.0, 1.0), dtype="float32"),
                            _camera((8, 16, 3)), "k")(frame)
    assert (normalized[:4] == -1.0).all()


def test_a_fit_sequence_takes_the_first_without_a_disallowed_upscale() -> None:
    leaf = Image(size=64, fit=("crop", "pad"))
    big = plan_image(leaf, _camera((128, 256, 3)), "image")
    assert any("fit=crop" in step for step in big.steps)
    small = plan_image(leaf, _camera((32, 64, 3)), "image")
    assert any("fit=pad" in step for step in small.steps)
    assert small(_noise((32, 64, 3))).shape == (64, 64, 3)
    # Every fit upscales a tiny camera: the first is taken, with the upscale advisory.
    tiny = plan_image(Image(size=64, fit=("crop", "pad")), _camera((16, 32, 3)), "image")
    assert any("fit=crop" in step for step in tiny.steps)
    assert any("upscaled" in note for note in tiny.advisories)


def test_stretch_resizes_straight_to_the_target() -> None:
    pipe = plan_image(Image(size=8, fit="stretch"), _camera((8, 16, 3)), "k")
    assert pipe.steps == ("resize 8x16->8x8 bilinear",) and pipe.advisories == ()
    assert pipe(_noise((8, 16, 3))).shape == (8, 8, 3)


def test_crop_and_crop_area_cut_the_same_centre_box() -> None:
    frame = _noise((8, 8, 3), seed=6)
    side = plan_image(Image(size=4, crop=0.5), _camera((8, 8, 3)), "k")(frame)
    area = plan_image(Image(size=4, crop_area=0.25), _camera((8, 8, 3)), "k")(frame)
    kept = plan_image(Image(crop=0.5), _camera((8, 8, 3)), "k")(frame)
    assert np.array_equal(side, frame[2:6, 2:6])
    assert np.array_equal(area, side) and np.array_equal(kept, side)


def test_upside_down_rotates_only_on_disagreement() -> None:
    frame = _noise((6, 10, 3), seed=7)
    flipped = plan_image(Image(), _camera((6, 10, 3), upside_down=True), "k")
    assert np.array_equal(flipped(frame), frame[::-1, ::-1])
    assert flipped(frame).flags.c_contiguous and flipped.steps == ("upright (rot180)",)
    agreed = plan_image(Image(upside_down=True), _camera((6, 10, 3), upside_down=True), "k")
    assert agreed(frame) is frame
    model_flip = plan_image(Image(upside_down=True), _camera((6, 10, 3)), "k")
    assert np.array_equal(model_flip(frame), np.rot90(frame, 2))


# -- channels ------------------------------------------------------------------------------


def test_declared_channels_must_match() -> None:
    with pytest.raises(AdapterResolutionError, match=r"'image' wants 3 channels.*has 1"):
        plan_image(Image(channels=3), _camera((8, 8, 1)), "image")
    assert plan_image(Image(channels=1), _camera((8, 8, 1)), "image").out_shape == (8, 8, 1)


def test_bgr_swaps_red_and_blue_and_needs_three_channels() -> None:
    frame = _noise((4, 4, 3), seed=9)
    out = plan_image(Image(channel_order="bgr"), _camera((4, 4, 3)), "k")(frame)
    assert np.array_equal(out, frame[..., ::-1]) and out.flags.c_contiguous
    with pytest.raises(AdapterResolutionError, match=r"bgr.*3 channels"):
        plan_image(Image(channel_order="bgr"), _camera((4, 4, 4)), "k")


# -- values --------------------------------------------------------------------------------


def test_normalize_maps_8bit_pixels() -> None:
    frame = np.array([0, 51, 255], np.uint8).reshape(1, 3, 1)
    unit = plan_image(Image(normalize=True, dtype="float32"), _camera((1, 3, 1)), "k")
    assert unit(frame).dtype == np.float32
    assert np.allclose(unit(frame).ravel(), [0.0, 0.2, 1.0])
    assert "uint8->float32 /255" in unit.steps
    signed = plan_image(Image(normalize=(-1.0, 1.0), dtype="float32"), _camera((1, 3, 1)), "k")
    assert np.allclose(signed(frame).ravel(), [-1.0, 51 / 127.5 - 1.0, 1.0])
    as_float = _camera((1, 3, 1), dtype=np.float32, low=0.0, high=255.0)
    assert np.allclose(plan_image(Image(normalize=True, dtype="float64"), as_float, "k")(
        frame.astype(np.float32)).ravel(), [0.0, 0.2, 1.0])


def test_normalize_with_the_default_uint8_dtype_gives_float32() -> None:
    pipe = plan_image(Image(normalize=True), _camera((2, 2, 3)), "k")
    assert pipe.out_dtype == np.float32
    assert pipe(np.full((2, 2, 3), 255, np.uint8)).dtype == np.float32
    assert any(note.level == "info" for note in pipe.advisories)


def test_a_unit_float_camera_maps_from_its_own_range() -> None:
    camera = _camera((2, 2, 1), dtype=np.float32, low=0.0, high=1.0)
    frame = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)[..., None]
    out = plan_image(Image(normalize=(-1.0, 1.0), dtype="float32"), camera, "k")(frame)
    assert np.allclose(out.ravel(), [-1.0, -0.5, 0.0, 1.0])


def test_normalize_refuses_a_source_that_is_not_pixels() -> None:
    unbounded = _camera((2, 2, 1), dtype=np.float32, low=None, high=None)
    with pytest.raises(AdapterResolutionError, match=r"'k' sets normalize.*8-bit"):
        plan_image(Image(normalize=True, dtype="float32"), unbounded, "k")


def test_a_float_camera_in_0_255_passes_into_uint8() -> None:
    camera = _camera((1, 4, 1), dtype=np.float32, low=0.0, high=255.0)
    frame = np.array([0.0, 17.0, 200.4, 254.6], np.float32).reshape(1, 4, 1)
    out = plan_image(Image(), camera, "k")(frame)
    assert out.dtype == np.uint8 and out.ravel().tolist() == [0, 17, 200, 255]
    wide = _camera((1, 3, 1), dtype=np.float64, low=None, high=None)
    clipped = plan_image(Image(), wide, "k")(np.array([-5.0, 127.5, 300.0]).reshape(1, 3, 1))
    assert clipped.ravel().tolist() == [0, 128, 255]


def test_a_unit_float_camera_cast_to_uint8_gets_a_caution() -> None:
    camera = _camera((2, 2, 3), dtype=np.float32, low=0.0, high=1.0)
    pipe = plan_image(Image(), camera, "k")
    (note,) = pipe.advisories
    assert note.level == "caution" and "not scaled" in note


# -- layout and lead axes ------------------------------------------------------------------


def test_layout_transposes_both_ways() -> None:
    frame = _noise((6, 10, 3), seed=10)
    to_chw = plan_image(Image(layout="chw"), _camera((6, 10, 3)), "k")
    out = to_chw(frame)
    assert out.shape == (3, 6, 10) == to_chw.out_shape and out.flags.c_contiguous
    assert np.array_equal(out, frame.transpose(2, 0, 1)) and to_chw.steps == ("hwc->chw",)
    back = plan_image(Image(), _camera((3, 6, 10), layout="chw"), "k")
    assert np.array_equal(back(out), frame) and back.out_shape == (6, 10, 3)
    resized = plan_image(Image(size=3, fit="stretch", layout="chw"),
                         _camera((3, 6, 10), layout="chw"), "k")
    expected = plan_image(Image(size=3, fit="stretch"), _camera((6, 10, 3)), "k")(frame)
    assert np.array_equal(resized(out), expected.transpose(2, 0, 1))


def test_lead_dims_add_leading_singletons() -> None:
    frame = _noise((4, 6, 3))
    pipe = plan_image(Image(lead_dims=2, normalize=True, dtype="float32", layout="chw"),
                      _camera((4, 6, 3)), "k")
    out = pipe(frame)
    assert out.shape == pipe.out_shape == (1, 1, 3, 4, 6)
    assert np.allclose(out[0, 0], frame.transpose(2, 0, 1) / 255.0)
    assert pipe.steps[-1] == "lead_dims 2"
    plain = plan_image(Image(lead_dims=1), _camera((4, 6, 3)), "k")(frame)
    assert plain.shape == (1, 4, 6, 3) and np.shares_memory(plain, frame)


# -- blank frames and the pad frame --------------------------------------------------------


def test_an_absent_optional_camera_gives_blank_frames() -> None:
    leaf = Image("image/wrist", size=8, channels=3, optional=True, fill=128,
                 normalize=(-1.0, 1.0), dtype="float32", layout="chw", lead_dims=1)
    pipe = plan_image(leaf, None, "wrist_image")
    out = pipe(None)
    assert pipe.blank and out.shape == pipe.out_shape == (1, 3, 8, 8)
    assert out.dtype == np.float32 and np.allclose(out, 128 / 127.5 - 1.0, atol=1e-6)
    assert not out.flags.writeable
    (note,) = pipe.advisories
    assert note.level == "warn" and "blank" in note and "wrist_image" in note
    assert (pipe.pad_frame() == -1.0).all()
    black = plan_image(Image(size=4, channels=1, optional=True), None, "k")
    assert black(None).dtype == np.uint8 and (black(None) == 0).all()


def test_an_absent_camera_must_be_optional_and_sized() -> None:
    with pytest.raises(AdapterResolutionError, match=r"'k'.*optional=True"):
        plan_image(Image(size=8, channels=3), None, "k")
    with pytest.raises(AdapterResolutionError, match="height, width and channels"):
        plan_image(Image(size=8, optional=True), None, "k")


def test_pad_frame_is_a_black_frame_through_the_pipe() -> None:
    pipe = plan_image(Image(size=8, normalize=(-1.0, 1.0), dtype="float32", layout="chw"),
                      _camera((16, 16, 3)), "k")
    pad = pipe.pad_frame()
    assert pad.shape == pipe.out_shape == (3, 8, 8) and (pad == -1.0).all()
    assert (plan_image(Image(), _camera((4, 4, 3)), "k").pad_frame() == 0).all()


def test_steps_read_in_pipeline_order() -> None:
    leaf = Image(size=224, normalize=True, dtype="float32", layout="chw", upside_down=True)
    pipe = plan_image(leaf, _camera((256, 256, 3)), "k")
    assert pipe.steps == ("upright (rot180)", "resize 256x256->224x224 bilinear",
                          "uint8->float32 /255", "hwc->chw")
    assert "224" in repr(pipe)


def test_upright_then_resize_on_a_chw_camera() -> None:
    frame = _noise((3, 12, 16), seed=12)
    camera = _camera((3, 12, 16), layout="chw", upside_down=True)
    pipe = plan_image(Image(height=6, width=8, channel_order="bgr", layout="chw"), camera, "k")
    upright = np.ascontiguousarray(frame.transpose(1, 2, 0)[::-1, ::-1])
    expected = plan_image(Image(height=6, width=8), _camera((12, 16, 3)), "k")(upright)
    assert np.array_equal(pipe(frame), expected[..., ::-1].transpose(2, 0, 1))
    assert pipe.steps == ("upright (rot180)", "resize 12x16->6x8 bilinear", "rgb->bgr")


@pytest.mark.parametrize("resample", ["bilinear", "area", "nearest", "bicubic_aa"])
@pytest.mark.parametrize(("src", "dst"), [((128, 128), (96, 96)), ((256, 256), (224, 224)),
                                          ((60, 90), (77, 41))])
def test_an_integer_frame_is_resampled_exactly_as_its_float_copy(
        src: tuple[int, int], dst: tuple[int, int], resample: str) -> None:
    """The 8-bit width pass gathers the pixels themselves; the numbers are those of a float32
    copy, and the fast rounding of non-negative weights is the general rounding."""
    from rlmesh.adapters import resize

    frame = np.random.default_rng(sum(src) + sum(dst)).integers(0, 256, (*src, 3), np.uint8)
    rows = resize.plan_axis(src[0], (0.0, float(src[0])), dst[0], resample)
    cols = resize.interleave(resize.plan_axis(src[1], (0.0, float(src[1])), dst[1], resample),
                             3)
    flat = frame.reshape(src[0], -1)
    direct = resize.apply_axis(flat, cols, 1, np.float32)
    via_float = resize.apply_axis(flat.astype(np.float32), cols, 1)
    assert direct.dtype == np.float32 and np.array_equal(direct, via_float)
    both = resize.apply_axis(direct, rows, 0)
    assert (rows.convex and cols.convex) == (resample != "bicubic_aa")
    if rows.convex and cols.convex:
        assert np.array_equal(resize._round_convex(both.copy(), np.dtype(np.uint8)),
                              resize._to_integer(both.copy(), np.dtype(np.uint8)))


def test_the_fast_rounding_rounds_half_up_at_the_edges() -> None:
    from rlmesh.adapters import resize

    values = np.array([0.0, 0.4, 0.5, 1.5, 2.5, 254.5, 254.4, 255.0, 255.00002],
                      np.float32)
    expected = resize._to_integer(values.copy(), np.dtype(np.uint8))
    assert expected.tolist() == [0, 0, 1, 2, 3, 255, 254, 255, 255]
    assert np.array_equal(resize._round_convex(values.copy(), np.dtype(np.uint8)), expected)
