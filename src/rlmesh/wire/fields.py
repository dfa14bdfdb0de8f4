"""The pieces of fixed-shape step frames: request ids and fields of fixed dtype and shape.

A fixed frame (:mod:`rlmesh.wire.fixed`) is the general encoder's bytes with a few places
left open: the request id, and the values of each field. A :class:`Field` is one of those
places, learnt from the general encoder's own bytes for a sample of its layout: the ext
prefix it writes before an array's (or a NumPy scalar's) bytes. An array too large to travel
inline travels in the message *body* (``docs/protocol.md`` section 3): its prefix then names
its place there (offset 0, its size), and the header holds no byte of its values.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np
from gymnasium import spaces as gs

from rlmesh.errors import EncodeError
from rlmesh.wire.encoder import Encoder

__all__ = ["RID_FORMATS", "RID_SIZES", "Field", "array_field", "body_of", "fixed_box",
           "read_rid", "rid_bytes", "scalar_field"]

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")

RID_SIZES: Final = {0xCC: 2, 0xCD: 3, 0xCE: 5}
"""The bytes a request id takes by its msgpack marker (a positive fixint takes one)."""
RID_FORMATS: Final = {1: "B", 2: "xB", 3: "xH", 5: "xI"}
"""struct formats of a request id by the width of its encoding (the marker byte skipped)."""


def rid_bytes(rid: Any) -> bytes | None:
    """The shortest msgpack encoding of a request id from 0 to 2**32 - 1; else ``None``."""
    if type(rid) is not int or rid < 0:
        return None
    if rid < 0x80:
        return bytes((rid,))
    if rid < 0x100:
        return bytes((0xCC, rid))
    if rid < 0x10000:
        return b"\xcd" + _U16.pack(rid)
    if rid < 0x100000000:
        return b"\xce" + _U32.pack(rid)
    return None


def read_rid(header: bytes, pos: int) -> tuple[int, int]:
    """The request id at ``pos`` and the position after it; ``(-1, 0)`` for another form.

    The header holds at least one byte after the id's, or the id is not read.
    """
    first = header[pos]
    if first < 0x80:
        return first, pos + 1
    size = RID_SIZES.get(first, 0)
    if not size or len(header) <= pos + size:
        return -1, 0
    return int.from_bytes(header[pos + 1 : pos + size], "big"), pos + size


class Field:
    """One field of fixed dtype and shape: the ext prefix the general encoder writes for it.

    Args:
        dtype: The values' dtype.
        shape: The values' shape (``()`` for a NumPy scalar).
        prefix: The bytes before the values' (for a field in the body: all of its bytes).
        in_body: Whether the values travel in the message body, not in the header.
    """

    __slots__ = ("dtype", "in_body", "inline", "layout", "nbytes", "prefix", "reshape",
                 "shape")

    def __init__(self, dtype: np.dtype[Any], shape: tuple[int, ...], prefix: bytes,
                 in_body: bool = False) -> None:
        self.dtype = dtype
        self.shape = shape
        self.layout = (shape, dtype)
        """What a value's ``(shape, dtype)`` must equal (tuples compare identity first)."""
        self.prefix = prefix
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self.in_body = in_body
        self.inline = 0 if in_body else self.nbytes
        """The bytes of the values in the header (none for a field in the body)."""
        self.reshape = len(shape) != 1

    def encode(self, value: Any) -> bytes | None:
        """The header bytes of an array of this layout (its prefix alone, in the body).

        ``None`` for a value of another type, dtype or shape.
        """
        if type(value) is not np.ndarray or (value.shape, value.dtype) != self.layout:
            return None
        return self.prefix if self.in_body else self.prefix + value.tobytes()

    def decode_bytes(self, data: bytes) -> np.ndarray[Any, Any]:
        """The array of these bytes, as the decoder returns an inline array (writable)."""
        array = np.frombuffer(bytearray(data), self.dtype)
        return array.reshape(self.shape) if self.reshape else array

    def decode_body(self, body: Any) -> np.ndarray[Any, Any]:
        """The array over a body of exactly :attr:`nbytes` (a view, as the decoder's)."""
        array = np.frombuffer(body, self.dtype)
        return array.reshape(self.shape) if self.reshape else array

    def decode_scalar(self, data: bytes) -> Any:
        """The NumPy scalar of these bytes, as the decoder returns one."""
        return np.frombuffer(data, self.dtype, 1)[0]


def body_of(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An array's bytes as the general encoder puts them in a body (C order, one piece)."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array.reshape(-1).view(np.uint8)


def array_field(encoder: Encoder, dtype: np.dtype[Any], shape: tuple[int, ...],
                body: bool = False) -> Field | None:
    """The field of arrays of ``dtype`` and ``shape``; ``None`` if it has no fixed bytes.

    Args:
        encoder: The general encoder, whose bytes the field's are.
        dtype: The arrays' dtype.
        shape: The arrays' shape.
        body: Whether the arrays may travel in the message body (as its only piece),
            where they are too large to travel inline; without, such a field is ``None``.
    """
    try:
        sample = np.zeros(shape, dtype)
        header, buffers, body_len = encoder.encode(sample)
    except (EncodeError, ValueError, MemoryError):
        return None  # (more dimensions than the wire carries, or no such array here)
    if not body_len:
        if not header.endswith(sample.tobytes()):
            return None  # (not an array of its own bytes)
        return Field(sample.dtype, sample.shape, header[: len(header) - sample.nbytes])
    if not body or body_len != sample.nbytes or len(buffers) != 1:
        return None
    return Field(sample.dtype, sample.shape, header, in_body=True)


def scalar_field(encoder: Encoder, dtype: np.dtype[Any]) -> Field:
    """The field of NumPy scalars of ``dtype`` (their ext prefix, as the encoder writes it)."""
    header, _, _ = encoder.encode(dtype.type(0))
    return Field(dtype, (), header[: len(header) - dtype.itemsize])


def fixed_box(space: gs.Space[Any]) -> bool:
    """Whether ``space`` is a Box of numbers (its samples are arrays of one layout)."""
    return type(space) is gs.Box and space.dtype is not None and space.dtype.kind in "biuf"
