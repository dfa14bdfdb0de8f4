"""``rlmesh.Tensor`` and the numpy face's conversions, from what their documentation states."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pytest

import rlmesh
import rlmesh.numpy as rnp
from rlmesh.tensor import DTYPES, from_numpy

NUMPY_DTYPES = [d for d in DTYPES if d != "bfloat16"]


def sample(dtype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray[Any, Any]:
    return (np.arange(int(np.prod(shape))) % 2).astype(dtype).reshape(shape)


def test_a_tensor_is_built_from_bytes_with_a_shape_and_a_dtype() -> None:
    t = rlmesh.Tensor(np.arange(6, dtype=np.float32).tobytes(), [2, 3], "float32")
    assert (t.shape, t.dtype, t.ndim, t.size, t.nbytes) == ([2, 3], "float32", 2, 6, 24)
    assert t.strides == [12, 4]  # bytes, C order
    assert t.device == "cpu"
    assert t.is_contiguous()
    assert t.__dlpack_device__() == (1, 0)
    np.testing.assert_array_equal(np.asarray(t), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert "[2, 3]" in repr(t) and "float32" in repr(t)


@pytest.mark.parametrize("buffer", [bytes(8), bytearray(8), memoryview(bytes(8)),
                                    np.zeros(2, np.float32)])
def test_any_buffer_protocol_object_is_a_buffer(buffer: Any) -> None:
    assert rlmesh.Tensor(buffer, [2], "float32").tobytes() == bytes(8)


def test_a_tensor_owns_its_storage() -> None:
    source = bytearray(np.arange(3, dtype=np.int32).tobytes())
    t = rlmesh.Tensor(source, [3], "int32")
    source[:] = bytes(12)
    assert np.asarray(t).tolist() == [0, 1, 2]
    assert rlmesh.Tensor(t, [3], "int32").tobytes() == t.tobytes()


def test_a_zero_dimensional_tensor_has_an_empty_shape() -> None:
    t = rlmesh.Tensor(np.float64(2.5).tobytes(), [], "float64")
    assert (t.shape, t.ndim, t.size, t.strides) == ([], 0, 1, [])
    assert np.asarray(t)[()] == 2.5


@pytest.mark.parametrize(("buffer", "shape", "dtype"), [
    (bytes(7), [2], "float32"),         # wrong length
    (bytes(8), [-2], "float32"),        # negative dimension
    (bytes(8), [2], "complex64"),       # no such tensor dtype
    ("eight by", [8], "uint8"),         # not a buffer
])
def test_a_tensor_that_does_not_fit_is_refused_with_a_value_error(
        buffer: Any, shape: list[int], dtype: str) -> None:
    with pytest.raises(rlmesh.TensorError) as caught:
        rlmesh.Tensor(buffer, shape, dtype)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, rlmesh.RLMeshError)


def test_reshape_infers_one_dimension_and_shares_the_storage() -> None:
    t = from_numpy(np.arange(6, dtype=np.int16))
    r = t.reshape([-1, 2])
    assert r.shape == [3, 2] and t.reshape(2, 3).shape == [2, 3]
    assert np.shares_memory(np.asarray(r), np.asarray(t))
    with pytest.raises(rlmesh.TensorError):
        t.reshape([4, -1])
    with pytest.raises(ValueError):
        t.reshape([-1, -1])


def test_copy_has_fresh_storage_and_the_same_elements() -> None:
    t = from_numpy(np.arange(4, dtype=np.uint8))
    c = t.copy()
    assert c.tobytes() == t.tobytes() and (c.shape, c.dtype) == (t.shape, t.dtype)
    assert not np.shares_memory(np.asarray(c), np.asarray(t))


def test_the_array_protocol_shares_memory_read_only_and_copies_on_request() -> None:
    t = from_numpy(np.arange(4, dtype=np.float32))
    view = np.asarray(t)
    assert np.shares_memory(view, np.asarray(t)) and not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 1
    fresh = np.array(t, copy=True)
    fresh[0] = 9  # writable, and the tensor is untouched
    assert np.asarray(t)[0] == 0
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.float64, copy=False)


def test_the_buffer_is_a_read_only_memoryview_of_the_elements() -> None:
    t = from_numpy(np.arange(6, dtype=np.int32).reshape(2, 3))
    view = t.buffer
    assert view.readonly and view.format == "i" and view.shape == (2, 3)
    assert view.tobytes() == t.tobytes()
    if sys.version_info >= (3, 12):  # PEP 688: memoryview() of a Python object
        assert memoryview(t).tobytes() == t.tobytes()  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_numpy_reads_a_tensor_over_dlpack_without_a_copy_read_only(dtype: str) -> None:
    t = from_numpy(sample(dtype))
    array = np.from_dlpack(t)
    np.testing.assert_array_equal(array, sample(dtype))
    assert np.shares_memory(array, np.asarray(t))
    assert not array.flags.writeable


def test_a_legacy_dlpack_consumer_gets_the_same_memory() -> None:
    t = from_numpy(np.arange(3, dtype=np.float32))
    capsule = t.__dlpack__()  # no max_version: a legacy capsule
    back = rlmesh.Tensor.from_dlpack(capsule)
    assert back.tobytes() == t.tobytes()


def test_dlpack_copy_exports_a_fresh_writable_buffer() -> None:
    t = from_numpy(np.arange(3, dtype=np.float32))

    class Copying:
        def __dlpack__(self, **kwargs: Any) -> Any:
            return t.__dlpack__(max_version=(1, 0), copy=True)

        def __dlpack_device__(self) -> tuple[int, int]:
            return t.__dlpack_device__()

    array = np.from_dlpack(Copying())
    assert array.flags.writeable and not np.shares_memory(array, np.asarray(t))


@pytest.mark.parametrize("kwargs", [{"stream": 1}, {"dl_device": (2, 0)}])
def test_dlpack_export_refuses_a_stream_or_another_device(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BufferError):
        from_numpy(np.zeros(2, np.float32)).__dlpack__(**kwargs)


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_from_dlpack_copies_any_producer(dtype: str) -> None:
    source = sample(dtype)
    t = rlmesh.Tensor.from_dlpack(source)
    assert (t.shape, t.dtype) == ([2, 3], dtype)
    np.testing.assert_array_equal(np.asarray(t), source)
    assert not np.shares_memory(np.asarray(t), source)


def test_from_dlpack_consumes_a_versioned_capsule() -> None:
    source = np.arange(4, dtype=np.int64)
    t = rlmesh.Tensor.from_dlpack(source.__dlpack__(max_version=(1, 0)))
    assert np.asarray(t).tolist() == [0, 1, 2, 3]


def test_from_dlpack_refuses_what_is_not_a_producer() -> None:
    with pytest.raises(rlmesh.TensorError):
        rlmesh.Tensor.from_dlpack([1, 2, 3])


def test_storage_is_aligned_to_64_bytes() -> None:
    for t in (from_numpy(np.arange(5, dtype=np.uint8)), rlmesh.Tensor(bytes(3), [3], "uint8")):
        assert np.asarray(t).ctypes.data % 64 == 0


def test_a_tensor_pickles() -> None:
    t = from_numpy(np.arange(4, dtype=np.int8))
    back = pickle.loads(pickle.dumps(t))
    assert (back.shape, back.dtype, back.tobytes()) == (t.shape, t.dtype, t.tobytes())


# -- rlmesh.numpy ----------------------------------------------------------------------------


def test_numpy_asarray_is_a_writable_copy() -> None:
    t = rnp.from_array(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert isinstance(t, rlmesh.Tensor)
    obs = rnp.asarray(t)
    assert obs.dtype == np.uint8 and obs.shape == (2, 3) and obs.flags.writeable
    obs //= 2  # in place, as on a Gymnasium observation
    assert np.asarray(t).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_numpy_round_trip_keeps_dtype_shape_and_elements(dtype: str) -> None:
    source = sample(dtype, (3, 1, 2))
    t = rnp.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and (t.shape, t.dtype) == ([3, 1, 2], dtype)
    back = rnp.asarray(t)
    assert back.dtype == source.dtype
    np.testing.assert_array_equal(back, source)


def test_from_array_copies_and_makes_c_contiguous() -> None:
    source = np.arange(12, dtype=np.float32).reshape(3, 4).T  # Fortran order
    t = rnp.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and t.is_contiguous() and t.strides == [12, 4]
    np.testing.assert_array_equal(np.asarray(t), source)
    source[0, 0] = 99
    assert np.asarray(t)[0, 0] == 0


def test_from_array_gives_scalars_as_python_values() -> None:
    assert rnp.from_array(np.float32(1.5)) == 1.5 and type(rnp.from_array(np.int64(3))) is int
    assert rnp.from_array(np.array(True)) is True


@pytest.mark.parametrize("value", [[1, 2], 3, "x"])
def test_from_array_refuses_what_is_not_numpy_with_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        rnp.from_array(value)


def test_bfloat16_reads_through_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    source = np.array([1.0, -2.5, 0.5], dtype=ml_dtypes.bfloat16)
    t = rnp.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and t.dtype == "bfloat16" and t.nbytes == 6
    back = rnp.asarray(t)
    assert back.dtype == source.dtype and back.tolist() == [1.0, -2.5, 0.5]
    with pytest.raises(BufferError):
        t.__dlpack__()


def test_bfloat16_without_ml_dtypes_names_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    t = rlmesh.Tensor(bytes(4), [2], "bfloat16")
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    with pytest.raises(ImportError, match="ml_dtypes"):
        rnp.asarray(t)


def test_ensure_available_passes_with_numpy_installed() -> None:
    assert rnp.ensure_available() is None


def test_the_value_alias_names_arrays_and_containers() -> None:
    text = str(rnp.NumpyValue)
    assert "ndarray" in text and "list" in text and "dict" in text
