"""``rlmesh.Tensor``: one framework-neutral tensor value, and the primitives beside it.

A :class:`Tensor` is a dense, C-ordered block of elements with a shape and a dtype name
(``"float32"``, ``"uint8"``, ``"bfloat16"``, ...; :data:`DTYPES` lists them). It owns its
storage, never changes, and hands its elements to any framework without a copy: through
the numpy array protocol (``numpy.asarray(tensor)``), the buffer protocol
(``tensor.buffer``) and DLPack (``torch.from_dlpack(tensor)``, ``jax.numpy.from_dlpack``,
``numpy.from_dlpack``). It is built from raw bytes (``Tensor(buffer, shape, dtype)``), from
any DLPack producer (:meth:`Tensor.from_dlpack`) or from a numpy array
(:func:`from_numpy`); each of these copies once, into fresh storage aligned to 64 bytes.

Views given out are read-only where the protocol can say so (numpy arrays, memoryviews,
DLPack 1.0 capsules). A legacy DLPack capsule cannot carry the flag; like every DLPack
consumer's shared view, treat it as read-only. ``bfloat16`` elements are stored as their
raw 16 bits: numpy sees them with the ``ml_dtypes`` package (which JAX installs), and DLPack
does not export them (``rlmesh.torch.as_tensor`` and ``rlmesh.jax.asarray`` read them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Union

import numpy as np

from rlmesh.errors import TensorError
from rlmesh.extras import missing_extra

__all__ = ["DTYPES", "PrimitiveValue", "Tensor", "from_numpy"]

PrimitiveValue = Union[None, bool, int, float, str, bytes]  # noqa: UP007 - a runtime alias
"""The scalar values that travel as themselves, not as tensors."""

DTYPES: Final = ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32",
                 "uint64", "float16", "bfloat16", "float32", "float64")
"""The dtype names a tensor may have."""

_STORAGE: Final = {name: np.dtype(name if name != "bfloat16" else "uint16") for name in DTYPES}
"""How each dtype is stored (``bfloat16`` as its raw bits)."""

_ALIGN: Final = 64
_KDL_CPU: Final = 1


def _dtype_name(dtype: Any) -> str:
    """``dtype`` (a name, a numpy dtype or type) as one of :data:`DTYPES`."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in _STORAGE:
        raise TensorError(f"unsupported tensor dtype {name!r}; supported: {', '.join(DTYPES)}")
    return name


def _dims(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise TensorError(f"a tensor shape has no negative dimensions, got {list(dims)}")
    return dims


def _aligned_copy(source: np.ndarray[Any, Any], storage: np.dtype[Any],
                  dims: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """A fresh, writable, 64-byte-aligned array of ``storage`` holding ``source``'s bytes."""
    nbytes = source.nbytes
    block = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    start = -block.ctypes.data % _ALIGN
    data = block[start:start + nbytes]
    data[:] = source.reshape(-1).view(np.uint8)
    return data.view(storage).reshape(dims)


def _bfloat16() -> np.dtype[Any]:
    try:
        import ml_dtypes
    except ImportError as exc:
        raise missing_extra("bfloat16 tensors as numpy arrays", "ml_dtypes", "jax") from exc
    bfloat16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return bfloat16


def _bytes_of(buffer: Any) -> np.ndarray[Any, Any]:
    """The bytes of any buffer-protocol object (or tensor), as a flat uint8 array."""
    if isinstance(buffer, Tensor):
        buffer = buffer.buffer
    try:
        view = memoryview(buffer)
    except TypeError as exc:
        raise TensorError(f"a {type(buffer).__name__} is not a buffer of bytes") from exc
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return np.frombuffer(view.cast("B"), dtype=np.uint8)


class _Capsule:
    """A bare DLPack capsule dressed as a producer, for ``numpy.from_dlpack``."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, **_: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (_KDL_CPU, 0)


class Tensor:
    """A framework-neutral tensor: immutable, C-ordered elements with a shape and a dtype.

    Args:
        buffer: Any object with the buffer protocol (``bytes``, ``bytearray``,
            ``memoryview``, a numpy array) or another tensor; its bytes are copied.
        shape: The dimensions; their product times the dtype's size must equal the
            buffer's length in bytes.
        dtype: One of :data:`DTYPES` (a numpy dtype is accepted too).

    Raises:
        TensorError: The dtype is not supported, a dimension is negative or the buffer has
            the wrong length (a ``ValueError``).

    Example::

        t = rlmesh.Tensor(bytes(24), [2, 3], "float32")
        t.shape, t.dtype, t.strides    # [2, 3], 'float32', [12, 4]
        numpy.asarray(t)               # a read-only view, no copy
        torch.from_dlpack(t)           # shares the same memory
    """

    __slots__ = ("_data", "_dtype")

    _data: np.ndarray[Any, Any]
    _dtype: str

    def __init__(self, buffer: Any, shape: Sequence[int], dtype: Any) -> None:
        name = _dtype_name(dtype)
        dims = _dims(shape)
        storage = _STORAGE[name]
        raw = _bytes_of(buffer)
        expected = math.prod(dims) * storage.itemsize
        if raw.nbytes != expected:
            raise TensorError(f"shape {list(dims)} of {name} needs {expected} bytes, "
                              f"the buffer has {raw.nbytes}")
        self._data = _aligned_copy(raw, storage, dims)
        self._dtype = name

    @classmethod
    def _owning(cls, data: np.ndarray[Any, Any], dtype: str) -> Tensor:
        """A tensor over ``data``, which nobody else holds (no copy, no checks)."""
        tensor = cls.__new__(cls)
        tensor._data = data
        tensor._dtype = dtype
        return tensor

    # -- what it is -----------------------------------------------------------------------

    @property
    def shape(self) -> list[int]:
        """The dimensions, as a list (``[]`` for a 0-d tensor)."""
        return list(self._data.shape)

    @property
    def dtype(self) -> str:
        """The dtype name, one of :data:`DTYPES`."""
        return self._dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    @property
    def nbytes(self) -> int:
        """The size of the elements in bytes."""
        return int(self._data.nbytes)

    @property
    def strides(self) -> list[int]:
        """The step in bytes along each dimension (C order)."""
        return list(self._data.strides)

    @property
    def device(self) -> str:
        """Where the elements are: always ``"cpu"``."""
        return "cpu"

    def is_contiguous(self) -> bool:
        """Whether the elements are laid out in C order without gaps (always, here)."""
        return bool(self._data.flags.c_contiguous)

    def __repr__(self) -> str:
        return f"rlmesh.Tensor(shape={self.shape}, dtype={self._dtype!r})"

    # -- new tensors ------------------------------------------------------------------------

    def reshape(self, shape: Sequence[int] | int, *more: int) -> Tensor:
        """The same elements in a new shape, sharing this tensor's storage.

        Args:
            shape: The new dimensions, or the first of them; one may be ``-1``, to be
                inferred from the number of elements.
            *more: The other dimensions, when they are given as separate arguments.

        Raises:
            TensorError: The shape does not hold this many elements.
        """
        dims = (shape, *more) if isinstance(shape, int) else (*shape, *more)
        try:
            data = self._data.reshape(tuple(int(d) for d in dims))
        except ValueError as exc:
            raise TensorError(f"cannot reshape {self.shape} ({self.size} elements) "
                              f"to {list(dims)}: {exc}") from exc
        return Tensor._owning(data, self._dtype)

    def copy(self) -> Tensor:
        """A tensor with the same elements in storage of its own."""
        return Tensor._owning(_aligned_copy(self._data, self._data.dtype, self._data.shape),
                              self._dtype)

    @staticmethod
    def from_dlpack(producer: Any) -> Tensor:
        """A tensor holding a copy of a DLPack producer's elements.

        Args:
            producer: Any object with ``__dlpack__`` and ``__dlpack_device__`` on the CPU
                (a torch tensor, a JAX or numpy array, a tensor), or a DLPack capsule
                (legacy or versioned), which is consumed.

        Raises:
            TensorError: The producer is not on the CPU or its dtype is not supported.
        """
        if type(producer).__name__ == "PyCapsule":
            producer = _Capsule(producer)
        try:
            array = np.from_dlpack(producer)
        except (AttributeError, BufferError, RuntimeError, TypeError, ValueError) as exc:
            raise TensorError(f"cannot import a {type(producer).__name__} over DLPack: "
                              f"{exc}") from exc
        return from_numpy(array)

    # -- the elements, shared ---------------------------------------------------------------

    def _view(self, dtype: np.dtype[Any] | None = None) -> np.ndarray[Any, Any]:
        """A read-only numpy view of the storage (as ``dtype``, default the storage's)."""
        view = self._data.view() if dtype is None else self._data.view(dtype)
        view.flags.writeable = False
        return view

    def _numpy_view(self) -> np.ndarray[Any, Any]:
        return self._view(_bfloat16() if self._dtype == "bfloat16" else None)

    @property
    def buffer(self) -> memoryview:
        """A read-only memoryview of the elements (flat bytes for ``bfloat16``)."""
        if self._dtype == "bfloat16":
            return self._view().data.cast("B")
        return self._view().data

    def __buffer__(self, flags: int, /) -> memoryview:
        return self.buffer

    def tobytes(self) -> bytes:
        """The elements as bytes, in C order."""
        return self._data.tobytes()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        """The numpy array protocol: a read-only view without a copy, unless one is needed.

        Args:
            dtype: Convert to this dtype (a copy).
            copy: ``True``: always a fresh, writable array; ``False``: never copy (a
                conversion then raises ``ValueError``); ``None``: copy only to convert.
        """
        view = self._numpy_view()
        if dtype is not None and np.dtype(dtype) != view.dtype:
            if copy is False:
                raise ValueError(f"a {self._dtype} tensor cannot be read as {np.dtype(dtype)} "
                                 "without a copy")
            return view.astype(dtype)
        return view.copy() if copy else view

    def __dlpack_device__(self) -> tuple[int, int]:
        """The DLPack device of the elements: ``(kDLCPU, 0)``."""
        return (_KDL_CPU, 0)

    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: tuple[int, int] | None = None, copy: bool | None = None) -> Any:
        """Export the elements as a DLPack capsule.

        A consumer that accepts DLPack 1.0 (``max_version >= (1, 0)``) gets a versioned
        capsule flagged read-only; an older one a legacy capsule over the same memory.
        ``copy=True`` exports a fresh, writable copy instead.

        Raises:
            BufferError: A stream or a device other than the CPU was asked for, or the dtype
                is ``bfloat16`` (a :class:`TensorError` too).
        """
        self._check_export(stream, dl_device)
        source = self._data.copy() if copy else self._data
        if max_version is None or max_version[0] < 1:
            return source.__dlpack__()
        shared = source if copy else self._view()
        try:
            return shared.__dlpack__(max_version=max_version, copy=False)
        except TypeError:  # numpy before 2.1 exports legacy capsules only
            return source.__dlpack__()

    def _check_export(self, stream: Any, dl_device: tuple[int, int] | None) -> None:
        if stream is not None:
            raise _ExportError("a CPU tensor is exported with stream=None")
        if dl_device is not None and tuple(dl_device) != (_KDL_CPU, 0):
            raise _ExportError(f"a CPU tensor cannot be exported to DLPack device {dl_device}")
        if self._dtype == "bfloat16":
            raise _ExportError("bfloat16 tensors are not exported over DLPack; use "
                               "rlmesh.torch.as_tensor or rlmesh.jax.asarray")


class _ExportError(TensorError, BufferError):
    """A DLPack export this tensor refuses (a ``BufferError``, as the protocol asks)."""


def from_numpy(array: np.ndarray[Any, Any]) -> Tensor:
    """A tensor holding a copy of ``array``'s elements (in C order, 64-byte aligned).

    Raises:
        TensorError: The dtype is not one of :data:`DTYPES` (a ``ValueError``).
    """
    name = _dtype_name(array.dtype)
    storage = _STORAGE[name]
    source = array if array.flags.c_contiguous else array.copy(order="C")
    if source.dtype != storage:  # bfloat16, or a non-native byte order
        source = (source.view(storage) if name == "bfloat16"
                  else source.astype(storage))
    return Tensor._owning(_aligned_copy(source, storage, source.shape), name)
