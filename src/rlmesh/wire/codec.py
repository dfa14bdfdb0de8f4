"""Values to and from the wire: msgpack headers plus raw out-of-band array buffers.

See ``docs/protocol.md`` section 3 for the format. The encoder never pickles; a value it
cannot describe raises :class:`~rlmesh.errors.EncodeError`, or, for ``info`` and ``metadata``,
is replaced by its ``repr`` (see :func:`rlmesh.wire.lenient.sanitize`).
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack
import numpy as np
from gymnasium.spaces import GraphInstance

from rlmesh.errors import EncodeError, ProtocolError

__all__ = [
    "ALIGN", "EXT_ARRAY", "EXT_ARRAY_OOB", "EXT_BIGINT", "EXT_COMPLEX", "EXT_GRAPH",
    "EXT_OBJECT_ARRAY", "EXT_SCALAR", "EXT_TUPLE", "INLINE_MAX_BYTES", "MAX_EXT_DEPTH", "MAX_NDIM",
    "Decoder", "Encoder", "dtype_meta",
]

EXT_ARRAY: Final = 1
EXT_ARRAY_OOB: Final = 2
EXT_SCALAR: Final = 3
EXT_TUPLE: Final = 4
EXT_GRAPH: Final = 5
EXT_BIGINT: Final = 6
EXT_COMPLEX: Final = 7
EXT_OBJECT_ARRAY: Final = 8

INLINE_MAX_BYTES: Final = 1024
"""Arrays up to this many bytes travel inside the header; larger ones out of band."""
ALIGN: Final = 64
MAX_NDIM: Final = 32
MAX_EXT_DEPTH: Final = 64
"""Most levels of tuples and graph instances nested inside each other."""
_ALLOWED_KINDS: Final = frozenset("biufcSUmM")
_OOB: Final = struct.Struct("<QQ")
_COMPLEX: Final = struct.Struct("<dd")
_PAD: Final = bytes(ALIGN)


_new_tuple = tuple.__new__
_unpackb = msgpack.unpackb


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """Build an ExtType without its validating constructor (code and data are ours)."""
    ext: msgpack.ExtType = _new_tuple(msgpack.ExtType, (code, data))
    return ext


def dtype_meta(dtype: np.dtype[Any]) -> bytes:
    """The wire's dtype meta (length byte + ``dtype.str``).

    Raises:
        EncodeError: For dtypes that cannot travel (object, void, structured, subarray).
    """
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype:
        raise EncodeError(f"arrays of dtype {dtype} cannot be sent (only plain dtypes)")
    code: bytes = dtype.str.encode("ascii")
    return bytes((len(code),)) + code


class Encoder:
    """Turns a Python value into a msgpack header and a list of out-of-band buffers.

    An encoder is reused for every message of one connection and is not thread-safe.
    """

    def __init__(self) -> None:
        self._buffers: list[Any] = []
        self._body_len = 0
        self._depth = 0
        self._meta_cache: dict[tuple[np.dtype[Any], tuple[int, ...]], bytes] = {}
        self._scalar_meta: dict[type, bytes] = {}
        self._packer = msgpack.Packer(
            default=self._default, strict_types=True, use_bin_type=True, autoreset=True
        )

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
        self._buffers = []
        self._body_len = 0
        self._depth = 0
        try:
            header = self._packer.pack(value)
        except EncodeError:
            self._packer.reset()
            raise
        except RecursionError as exc:
            self._packer.reset()
            raise EncodeError("value nested too deeply to send") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            self._packer.reset()
            raise EncodeError(str(exc)) from exc
        return header, self._buffers, self._body_len

    def _pack_nested(self, value: Any) -> bytes:
        if self._depth >= MAX_EXT_DEPTH:
            raise EncodeError(f"tuples and graphs nested deeper than {MAX_EXT_DEPTH} levels "
                              "cannot be sent")
        self._depth += 1
        try:
            return msgpack.packb(value, default=self._default, strict_types=True,
                                 use_bin_type=True)
        finally:
            self._depth -= 1

    def _array_meta(self, array: np.ndarray[Any, Any]) -> bytes:
        """Build (and cache) the meta of arrays of this dtype and shape."""
        if array.ndim > MAX_NDIM:
            raise EncodeError(f"arrays with more than {MAX_NDIM} dimensions cannot be sent")
        meta = dtype_meta(array.dtype) + struct.pack(f"<B{array.ndim}q", array.ndim, *array.shape)
        if len(self._meta_cache) < 256:
            self._meta_cache[(array.dtype, array.shape)] = meta
        return meta

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
        pad = -self._body_len % ALIGN
        if pad:
            self._buffers.append(_PAD[:pad])
        offset = self._body_len + pad
        self._buffers.append(array.reshape(-1).view(np.uint8))
        self._body_len = offset + nbytes
        return _ext(EXT_ARRAY_OOB, meta + _OOB.pack(offset, nbytes))

    def _default(self, obj: Any) -> Any:
        if type(obj) is np.ndarray:  # the hot path
            return self._array(obj)
        if isinstance(obj, np.ndarray):  # a subclass (matrix, masked): send the plain array
            return self._array(np.asarray(obj))
        if isinstance(obj, np.generic):
            meta = self._scalar_meta.get(type(obj))
            if meta is None:
                if obj.dtype.itemsize == 0:  # np.str_(""): its array form holds one char
                    obj = np.asarray(obj)
                meta = dtype_meta(obj.dtype)
                if obj.dtype.kind in "biufc" and obj.dtype.isnative:
                    self._scalar_meta[type(obj)] = meta
            return _ext(EXT_SCALAR, meta + obj.tobytes())
        if isinstance(obj, GraphInstance):
            return msgpack.ExtType(EXT_GRAPH, self._pack_nested(list(obj)))
        if isinstance(obj, tuple):
            return msgpack.ExtType(EXT_TUPLE, self._pack_nested(list(obj)))
        if isinstance(obj, int):
            if type(obj) is int:  # only reached on 64-bit overflow
                return msgpack.ExtType(EXT_BIGINT, str(obj).encode("ascii"))
            return int(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, complex):
            return msgpack.ExtType(EXT_COMPLEX, _COMPLEX.pack(obj.real, obj.imag))
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return bytes(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        raise EncodeError(f"values of type {type(obj).__qualname__} cannot be sent")


class Decoder:
    """Turns a received header and body back into Python values.

    Arrays decoded from the body are writable views of that message's freshly allocated body,
    and inline arrays are copies, so every array handed out is owned by the receiver.
    """

    def __init__(self) -> None:
        self._body: bytearray | memoryview = bytearray()
        self._depth = 0
        self._meta_cache: dict[bytes, tuple[np.dtype[Any], tuple[int, ...], int, int, int]] = {}
        self._options: dict[str, Any] = {
            "ext_hook": self._ext_hook, "raw": False, "strict_map_key": False}

    def decode(self, header: bytes | memoryview, body: bytearray | memoryview | None) -> Any:
        """Decode one message.

        Args:
            header: The msgpack header bytes.
            body: The message body (out-of-band array data), or ``None`` when empty.

        Returns:
            The decoded header value.

        Raises:
            ProtocolError: If the header is not valid msgpack or references invalid data.
        """
        self._body = body if body is not None else bytearray()
        self._depth = 0
        try:
            return _unpackb(header, **self._options)
        except ProtocolError:
            raise
        except Exception as exc:
            raise ProtocolError(f"malformed message header: {exc}") from exc

    def _meta(self, data: bytes) -> tuple[np.dtype[Any], tuple[int, ...], int, int, int]:
        """Parse (and cache) array meta: ``(dtype, shape, count, data_offset, nbytes)``."""
        if len(data) < 2:
            raise ProtocolError("truncated array meta")
        n = data[0]
        end = 2 + n
        if len(data) < end:
            raise ProtocolError("truncated array meta")
        ndim = data[end - 1]
        stop = end + 8 * ndim
        key = data[:stop]
        cached = self._meta_cache.get(key)
        if cached is not None:
            return cached
        if ndim > MAX_NDIM or len(data) < stop:
            raise ProtocolError("invalid array meta")
        dtype = _parse_dtype(data[1 : 1 + n])
        shape = struct.unpack_from(f"<{ndim}q", data, end)
        if any(d < 0 for d in shape):
            raise ProtocolError(f"negative array dimension in {shape}")
        count = 1
        for d in shape:
            count *= d
        if count and not dtype.itemsize:  # numpy would widen it: a few bytes, gigabytes out
            raise ProtocolError(f"a non-empty array of zero-width dtype {dtype} is invalid")
        result = (dtype, shape, count, stop, count * dtype.itemsize)
        if len(self._meta_cache) < 256:
            self._meta_cache[key] = result
        return result

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_ARRAY:
            try:  # the hot path: meta seen before
                n = data[0]
                dtype, shape, count, pos, size = self._meta_cache[data[: n + 2 + 8 * data[n + 1]]]
            except (KeyError, IndexError):
                dtype, shape, count, pos, size = self._meta(data)
            if len(data) - pos != size:
                raise ProtocolError("inline array size does not match its shape")
            if not size:  # empty: nothing to read
                return np.zeros(shape, dtype)
            array = np.frombuffer(bytearray(memoryview(data)[pos:]), dtype)
            if dtype.kind == "U":
                _check_code_points(array)
            return array if len(shape) == 1 else array.reshape(shape)
        if code == EXT_ARRAY_OOB:
            dtype, shape, count, pos, size = self._meta(data)
            if len(data) != pos + _OOB.size:
                raise ProtocolError("malformed out-of-band array reference")
            offset, nbytes = _OOB.unpack_from(data, pos)
            if nbytes != size or offset + nbytes > len(self._body):
                raise ProtocolError("out-of-band array reference outside the message body")
            array = np.frombuffer(self._body, dtype, count, offset)
            if dtype.kind == "U":
                _check_code_points(array)
            return array.reshape(shape)
        if code == EXT_SCALAR:
            if not data:
                raise ProtocolError("truncated scalar")
            n = data[0]
            dtype = _parse_dtype(data[1 : 1 + n])
            if len(data) - 1 - n != dtype.itemsize:
                raise ProtocolError("scalar size does not match its dtype")
            if dtype.itemsize == 0:
                return np.zeros((), dtype)[()]
            scalar = np.frombuffer(data, dtype, 1, 1 + n)
            if dtype.kind == "U":
                _check_code_points(scalar)
            return scalar[0]
        if code == EXT_TUPLE:
            return tuple(self._nested(data))
        if code == EXT_GRAPH:
            parts = self._nested(data)
            if len(parts) != 3:
                raise ProtocolError("a graph instance has three parts")
            return GraphInstance(*parts)
        if code == EXT_BIGINT:
            if len(data) > 4096:
                raise ProtocolError("integer too long")
            return int(data.decode("ascii"))
        if code == EXT_OBJECT_ARRAY:
            parts = self._nested(data)
            if (len(parts) != 2 or type(parts[0]) is not list or type(parts[1]) is not list
                    or len(parts[0]) > MAX_NDIM
                    or not all(type(d) is int and d >= 0 for d in parts[0])):
                raise ProtocolError("malformed object array")
            count = 1
            for d in parts[0]:
                count *= d
            if count != len(parts[1]):
                raise ProtocolError("object array size does not match its shape")
            array = np.empty(count, dtype=object)
            array[:] = parts[1] if count else []
            return array.reshape(parts[0])
        if code == EXT_COMPLEX:
            if len(data) != _COMPLEX.size:
                raise ProtocolError("malformed complex value")
            real, imag = _COMPLEX.unpack(data)
            return complex(real, imag)
        raise ProtocolError(f"unknown extension type {code}")

    def _nested(self, data: bytes) -> list[Any]:
        if self._depth >= MAX_EXT_DEPTH:
            raise ProtocolError(f"tuples and graphs nested deeper than {MAX_EXT_DEPTH} levels")
        self._depth += 1
        try:
            value = _unpackb(data, **self._options)
        finally:
            self._depth -= 1
        if not isinstance(value, list):
            raise ProtocolError("malformed container extension")
        return value


def _check_code_points(array: np.ndarray[Any, Any]) -> None:
    """Refuse unicode arrays holding values that are not code points (numpy cannot read them)."""
    codes = array.view(np.dtype(np.uint32).newbyteorder(array.dtype.byteorder))
    if array.size and int(codes.max()) > 0x10FFFF:
        raise ProtocolError("unicode array with values beyond U+10FFFF")


_DTYPE_CACHE: dict[bytes, np.dtype[Any]] = {}


def _parse_dtype(code: bytes) -> np.dtype[Any]:
    cached = _DTYPE_CACHE.get(code)
    if cached is not None:
        return cached
    if len(code) > 32:
        raise ProtocolError("dtype string too long")
    try:
        dtype = np.dtype(code.decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"invalid dtype {code!r}") from exc
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype:
        raise ProtocolError(f"dtype {dtype} is not allowed on the wire")
    if dtype.itemsize == 0 and dtype.kind not in "SU":
        raise ProtocolError(f"dtype {dtype} has no size")
    if len(_DTYPE_CACHE) < 256:
        _DTYPE_CACHE[code] = dtype
    return dtype
