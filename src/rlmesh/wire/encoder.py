"""Python values to the wire: a msgpack header plus raw out-of-band array buffers.

See ``docs/protocol.md`` section 3 for the format and :mod:`rlmesh.wire.format` for its
constants. The encoder never pickles: a value it cannot describe raises
:class:`~rlmesh.errors.EncodeError` (``info`` and ``metadata`` are made encodable first by
:func:`rlmesh.wire.lenient.sanitize`). A plain ``numpy.ndarray`` takes a short inline path;
every other value goes to a method picked by its type, resolved once per type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import msgpack
import numpy as np
from gymnasium.spaces import GraphInstance

from rlmesh.errors import EncodeError
from rlmesh.tensor import Tensor
from rlmesh.wire.format import (
    ALIGN,
    COMPLEX,
    EXT_ARRAY,
    EXT_ARRAY_OOB,
    EXT_BIGINT,
    EXT_COMPLEX,
    EXT_GRAPH,
    EXT_OBJECT_ARRAY,
    EXT_SCALAR,
    EXT_TUPLE,
    INLINE_MAX_BYTES,
    MAX_EXT_DEPTH,
    MAX_NDIM,
    OOB,
    dtype_meta,
)

__all__ = ["Encoder"]

_PAD: Final = bytes(ALIGN)
_new_tuple = tuple.__new__


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """Build an ExtType without its validating constructor (code and data are ours)."""
    ext: msgpack.ExtType = _new_tuple(msgpack.ExtType, (code, data))
    return ext


_PACKER_BUF: Final = 256 * 1024
"""msgpack's initial Packer buffer: a larger header grew it (it never shrinks), and the Packer
is replaced."""
_DETACHED: Final[list[Any]] = []
"""The buffer list of no message: :meth:`_Packing.default` only appends while packing."""


class _Packing:
    """The state of one message being packed, and the ``default`` hook msgpack calls.

    It refers to neither its :class:`Encoder` nor its Packer, and caches plain functions,
    not bound methods: an Encoder and everything it holds are freed by reference counting
    alone when its connection ends, not at the next full garbage collection.
    """

    _RULES: Final = (
        # (first matching base class, method name): numpy scalars before str and bytes,
        # whose subclasses np.str_ and np.bytes_ are; graph instances before tuple.
        (np.ndarray, "_subclass_array"), (np.generic, "_scalar"), (GraphInstance, "_graph"),
        (Tensor, "_tensor"),
        (tuple, "_tuple"), (int, "_int"), (float, "_float"),
        (complex, "_complex"), (str, "_str"), ((bytes, bytearray, memoryview), "_bytes"),
        (dict, "_dict"), (list, "_list"),
    )

    def __init__(self) -> None:
        self.buffers: list[Any] = _DETACHED
        self.body_len = 0
        self.depth = 0
        self._meta_cache: dict[tuple[np.dtype[Any], tuple[int, ...]], bytes] = {}
        self._scalar_meta: dict[type, bytes] = {}
        self._by_type: dict[type, Callable[[_Packing, Any], Any]] = {}

    def default(self, obj: Any) -> Any:
        """Called by msgpack for every value it does not pack natively."""
        if type(obj) is np.ndarray:  # the hot path
            return self._array(obj)
        kind = type(obj)
        method = self._by_type.get(kind)
        if method is None:
            method = self._resolve(kind)
        return method(self, obj)

    def _resolve(self, kind: type) -> Callable[[_Packing, Any], Any]:
        for base, name in self._RULES:
            if issubclass(kind, base):
                method: Callable[[_Packing, Any], Any] = getattr(_Packing, name)
                if len(self._by_type) < 256:
                    self._by_type[kind] = method
                return method
        raise EncodeError(f"values of type {kind.__qualname__} cannot be sent")

    # -- arrays -------------------------------------------------------------------------

    def _array(self, array: np.ndarray[Any, Any]) -> msgpack.ExtType:
        meta = self._meta_cache.get((array.dtype, array.shape))
        if meta is None:  # first sight of this dtype and shape (or an object array)
            if array.dtype.kind == "O":  # items travel as values of their own, never pickled
                return msgpack.ExtType(EXT_OBJECT_ARRAY, self._pack_nested(
                    [list(array.shape), array.ravel().tolist()]))
            meta = self._array_meta(array)
        nbytes = array.nbytes
        if nbytes <= INLINE_MAX_BYTES:
            return _ext(EXT_ARRAY, meta + array.tobytes())  # tobytes is C order regardless
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        pad = -self.body_len % ALIGN
        if pad:
            self.buffers.append(_PAD[:pad])
        offset = self.body_len + pad
        self.buffers.append(array.reshape(-1).view(np.uint8))
        self.body_len = offset + nbytes
        return _ext(EXT_ARRAY_OOB, meta + OOB.pack(offset, nbytes))

    def _array_meta(self, array: np.ndarray[Any, Any]) -> bytes:
        """Build (and cache) the meta of arrays of this dtype and shape."""
        if array.ndim > MAX_NDIM:
            raise EncodeError(f"arrays with more than {MAX_NDIM} dimensions cannot be sent")
        meta = dtype_meta(array.dtype) + struct.pack(f"<B{array.ndim}q", array.ndim, *array.shape)
        if len(self._meta_cache) < 256:
            self._meta_cache[(array.dtype, array.shape)] = meta
        return meta

    def _tensor(self, tensor: Tensor) -> msgpack.ExtType:
        """An :class:`rlmesh.Tensor` travels as the array it is (no copy: a read-only view)."""
        return self._array(np.asarray(tensor))

    def _subclass_array(self, obj: np.ndarray[Any, Any]) -> msgpack.ExtType:
        return self._array(np.asarray(obj))  # a matrix or masked array travels as plain

    def _scalar(self, obj: Any) -> msgpack.ExtType:  # a numpy scalar
        meta = self._scalar_meta.get(type(obj))
        if meta is None:
            if obj.dtype.itemsize == 0:  # np.str_(""): its array form holds one char
                obj = np.asarray(obj)
            meta = dtype_meta(obj.dtype)
            if obj.dtype.kind in "biufc" and obj.dtype.isnative:
                self._scalar_meta[type(obj)] = meta
        return _ext(EXT_SCALAR, meta + obj.tobytes())

    # -- containers and Python scalars ----------------------------------------------------

    def _pack_nested(self, value: Any) -> bytes:
        if self.depth >= MAX_EXT_DEPTH:
            raise EncodeError(f"tuples and graphs nested deeper than {MAX_EXT_DEPTH} levels "
                              "cannot be sent")
        self.depth += 1
        try:
            return msgpack.packb(value, default=self.default, strict_types=True,
                                 use_bin_type=True)
        finally:
            self.depth -= 1

    def _graph(self, obj: GraphInstance) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_GRAPH, self._pack_nested(list(obj)))

    def _tuple(self, obj: tuple[Any, ...]) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_TUPLE, self._pack_nested(list(obj)))

    def _int(self, obj: int) -> Any:
        if type(obj) is int:  # only reached on 64-bit overflow
            return msgpack.ExtType(EXT_BIGINT, str(obj).encode("ascii"))
        return int(obj)  # an int subclass (IntEnum...): as its plain value

    def _float(self, obj: float) -> float:
        return float(obj)

    def _complex(self, obj: complex) -> msgpack.ExtType:
        return msgpack.ExtType(EXT_COMPLEX, COMPLEX.pack(obj.real, obj.imag))

    def _str(self, obj: str) -> str:
        return str(obj)

    def _bytes(self, obj: bytes | bytearray | memoryview) -> bytes:
        return bytes(obj)

    def _dict(self, obj: dict[Any, Any]) -> dict[Any, Any]:
        return dict(obj)

    def _list(self, obj: list[Any]) -> list[Any]:
        return list(obj)


def _new_packer(packing: _Packing) -> msgpack.Packer:
    return msgpack.Packer(default=packing.default, strict_types=True, use_bin_type=True,
                          autoreset=True)


class Encoder:
    """Turns a Python value into a msgpack header and a list of out-of-band buffers.

    An encoder is reused for every message of one connection and is not thread-safe. After
    a header larger than the Packer's initial buffer (256 KiB) its Packer is replaced, so one
    large message does not keep a buffer of its size for the rest of the connection.
    """

    def __init__(self) -> None:
        self._packing = _Packing()
        self._packer = _new_packer(self._packing)

    def encode(self, value: Any) -> tuple[bytes, list[Any], int]:
        """Encode one message.

        Args:
            value: The header value (request or reply array).

        Returns:
            ``(header, buffers, body_len)``: the msgpack header bytes, the body pieces to send
            after it in order (array buffers and alignment padding), and their total length.

        Raises:
            EncodeError: If ``value`` holds something without a wire encoding.
        """
        packing = self._packing
        buffers: list[Any] = []
        packing.buffers = buffers
        packing.body_len = 0
        packing.depth = 0
        try:
            header = self._packer.pack(value)
        except EncodeError:
            self._packer = _new_packer(packing)  # a failed pack may have grown its buffer
            raise
        except RecursionError as exc:
            self._packer = _new_packer(packing)
            raise EncodeError("value nested too deeply to send") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            self._packer = _new_packer(packing)
            raise EncodeError(str(exc)) from exc
        finally:
            packing.buffers = _DETACHED  # the arrays are the caller's, not kept here
        if len(header) > _PACKER_BUF:  # its buffer grew to this size: do not keep it
            self._packer = _new_packer(packing)
        return header, buffers, packing.body_len
