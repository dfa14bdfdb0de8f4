"""The wire to Python values: a msgpack header plus the message body's array bytes.

See ``docs/protocol.md`` section 3 for the format and :mod:`rlmesh.wire.format` for its
constants. Every size, dtype, shape and nesting depth comes from the peer, so each is checked
before anything is allocated; a violation raises :class:`~rlmesh.errors.ProtocolError`. An
inline array whose meta was seen before takes a short path; every other extension goes to a
method picked by its code.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import msgpack
import numpy as np
from gymnasium.spaces import GraphInstance

from rlmesh.errors import ProtocolError
from rlmesh.wire.format import (
    COMPLEX,
    EXT_ARRAY,
    EXT_ARRAY_OOB,
    EXT_BIGINT,
    EXT_COMPLEX,
    EXT_GRAPH,
    EXT_OBJECT_ARRAY,
    EXT_SCALAR,
    EXT_TUPLE,
    MAX_EXT_DEPTH,
    MAX_NDIM,
    OOB,
    check_code_points,
    parse_dtype,
)

__all__ = ["Decoder"]

_MAX_BIGINT_DIGITS: Final = 4096
_unpackb = msgpack.unpackb
_Meta = tuple[np.dtype[Any], tuple[int, ...], int, int, int]
"""Parsed array meta: ``(dtype, shape, count, data_offset, nbytes)``."""


_NO_BODY: Final = b""
"""The body between messages: the last one is not kept once decoded."""


class _Unpacking:
    """The state of one message being unpacked, and the ``ext_hook`` msgpack calls.

    It refers to no :class:`Decoder` and holds no bound method of itself (the cold
    extension decoders are plain functions, in ``_COLD``), so a Decoder is freed by
    reference counting alone when its connection ends.
    """

    def __init__(self) -> None:
        self.body: bytearray | memoryview | bytes = _NO_BODY
        self.depth = 0
        self._meta_cache: dict[bytes, _Meta] = {}

    def ext_hook(self, code: int, data: bytes) -> Any:
        """Called by msgpack for every extension value."""
        if code != EXT_ARRAY:
            cold = _COLD.get(code)
            if cold is None:
                raise ProtocolError(f"unknown extension type {code}")
            return cold(self, data)
        try:  # the hot path: an inline array whose meta was seen before
            n = data[0]
            dtype, shape, _, pos, size = self._meta_cache[data[: n + 2 + 8 * data[n + 1]]]
        except (KeyError, IndexError):
            dtype, shape, _, pos, size = self._meta(data)
        if len(data) - pos != size:
            raise ProtocolError("inline array size does not match its shape")
        if not size:  # empty: nothing to read
            return np.zeros(shape, dtype)
        array = np.frombuffer(bytearray(memoryview(data)[pos:]), dtype)
        if dtype.kind == "U":
            check_code_points(array)
        return array if len(shape) == 1 else array.reshape(shape)

    def _meta(self, data: bytes) -> _Meta:
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
        dtype = parse_dtype(data[1 : 1 + n])
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

    def _oob_array(self, data: bytes) -> np.ndarray[Any, Any]:
        dtype, shape, count, pos, size = self._meta(data)
        if len(data) != pos + OOB.size:
            raise ProtocolError("malformed out-of-band array reference")
        offset, nbytes = OOB.unpack_from(data, pos)
        if nbytes != size or offset + nbytes > len(self.body):
            raise ProtocolError("out-of-band array reference outside the message body")
        array = np.frombuffer(self.body, dtype, count, offset)
        if dtype.kind == "U":
            check_code_points(array)
        return array.reshape(shape)

    def _scalar(self, data: bytes) -> Any:
        if not data:
            raise ProtocolError("truncated scalar")
        n = data[0]
        dtype = parse_dtype(data[1 : 1 + n])
        if len(data) - 1 - n != dtype.itemsize:
            raise ProtocolError("scalar size does not match its dtype")
        if dtype.itemsize == 0:
            return np.zeros((), dtype)[()]
        scalar = np.frombuffer(data, dtype, 1, 1 + n)
        if dtype.kind == "U":
            check_code_points(scalar)
        return scalar[0]

    def _nested(self, data: bytes) -> list[Any]:
        if self.depth >= MAX_EXT_DEPTH:
            raise ProtocolError(f"tuples and graphs nested deeper than {MAX_EXT_DEPTH} levels")
        self.depth += 1
        try:
            value = _unpackb(data, ext_hook=self.ext_hook, raw=False, strict_map_key=False)
        finally:
            self.depth -= 1
        if not isinstance(value, list):
            raise ProtocolError("malformed container extension")
        return value

    def _tuple(self, data: bytes) -> tuple[Any, ...]:
        return tuple(self._nested(data))

    def _graph(self, data: bytes) -> GraphInstance:
        parts = self._nested(data)
        if len(parts) != 3:
            raise ProtocolError("a graph instance has three parts")
        return GraphInstance(*parts)

    def _bigint(self, data: bytes) -> int:
        if len(data) > _MAX_BIGINT_DIGITS:
            raise ProtocolError("integer too long")
        return int(data.decode("ascii"))

    def _complex(self, data: bytes) -> complex:
        if len(data) != COMPLEX.size:
            raise ProtocolError("malformed complex value")
        real, imag = COMPLEX.unpack(data)
        return complex(real, imag)

    def _object_array(self, data: bytes) -> np.ndarray[Any, Any]:
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


_COLD: Final[dict[int, Callable[[_Unpacking, bytes], Any]]] = {
    EXT_ARRAY_OOB: _Unpacking._oob_array, EXT_SCALAR: _Unpacking._scalar,
    EXT_TUPLE: _Unpacking._tuple, EXT_GRAPH: _Unpacking._graph,
    EXT_BIGINT: _Unpacking._bigint, EXT_COMPLEX: _Unpacking._complex,
    EXT_OBJECT_ARRAY: _Unpacking._object_array}
"""Decoders of every extension but the hot inline array, by code."""


class Decoder:
    """Turns a received header and body back into Python values.

    Arrays decoded from the body are writable views of that message's freshly allocated body,
    and inline arrays are copies, so every array handed out is owned by the receiver. The
    decoder itself keeps no reference to a message once it is decoded.
    """

    def __init__(self) -> None:
        self._unpacking = _Unpacking()
        self._options: dict[str, Any] = {
            "ext_hook": self._unpacking.ext_hook, "raw": False, "strict_map_key": False}

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
        unpacking = self._unpacking
        unpacking.body = body if body is not None else bytearray()
        unpacking.depth = 0
        try:
            return _unpackb(header, **self._options)
        except ProtocolError:
            raise
        except Exception as exc:
            raise ProtocolError(f"malformed message header: {exc}") from exc
        finally:
            unpacking.body = _NO_BODY
