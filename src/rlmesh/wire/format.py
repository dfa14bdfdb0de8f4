"""The wire format's constants and dtype rules, shared by the encoder and the decoder.

``docs/protocol.md`` section 3 describes the format: a msgpack header whose arrays, numpy
scalars, tuples, graph instances, big integers, complex numbers and object arrays travel as
msgpack extension types (the ``EXT_*`` codes), followed by a body holding large arrays' bytes
out of band, each aligned to :data:`ALIGN` bytes.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Final

import numpy as np

from rlmesh.errors import EncodeError, ProtocolError

__all__ = [
    "ALIGN", "COMPLEX", "EXT_ARRAY", "EXT_ARRAY_OOB", "EXT_BIGINT", "EXT_COMPLEX", "EXT_GRAPH",
    "EXT_OBJECT_ARRAY", "EXT_SCALAR", "EXT_TUPLE", "INLINE_MAX_BYTES", "MAX_EXT_DEPTH", "MAX_NDIM",
    "OOB", "check_code_points", "dtype_meta", "parse_dtype",
]

OOB: Final = struct.Struct("<QQ")
"""An out-of-band array's place in the body: offset and byte count."""
COMPLEX: Final = struct.Struct("<dd")
"""A complex number: real and imaginary parts."""

EXT_ARRAY: Final = 1
"""An array inside the header: dtype meta, shape, then its bytes."""
EXT_ARRAY_OOB: Final = 2
"""An array in the body: dtype meta, shape, then its ``(offset, nbytes)`` there."""
EXT_SCALAR: Final = 3
"""A numpy scalar: dtype meta, then its bytes."""
EXT_TUPLE: Final = 4
"""A tuple: its items as a msgpack array."""
EXT_GRAPH: Final = 5
"""A ``gymnasium.spaces.GraphInstance``: ``[nodes, edges, edge_links]``."""
EXT_BIGINT: Final = 6
"""An integer beyond 64 bits: its decimal digits."""
EXT_COMPLEX: Final = 7
"""A Python complex: two little-endian doubles."""
EXT_OBJECT_ARRAY: Final = 8
"""An object array: ``[shape, items]``, each item a value of its own (never pickled)."""

INLINE_MAX_BYTES: Final = 1024
"""Arrays up to this many bytes travel inside the header; larger ones out of band."""
ALIGN: Final = 64
"""Out-of-band arrays start at multiples of this many bytes of the body."""
MAX_NDIM: Final = 32
"""Most dimensions an array may have (numpy's own limit is 64)."""
MAX_EXT_DEPTH: Final = 64
"""Most levels of tuples and graph instances nested inside each other."""
_ALLOWED_KINDS: Final = frozenset("biufcSUmM")
_DTYPE_STR: Final = re.compile(rb"[<>|=][biufcSUmM][0-9]{1,10}(\[[0-9]{0,3}[A-Za-z]{1,2}\])?")
"""The form of a plain dtype's ``dtype.str`` (``<f4``, ``|b1``, ``<U8``, ``<M8[ns]``): what
the encoder sends. Anything else (numpy's deprecated aliases such as ``a3``, names such as
``float32``) is refused before numpy parses it."""
_DTYPE_CACHE: dict[bytes, np.dtype[Any]] = {}


def dtype_meta(dtype: np.dtype[Any]) -> bytes:
    """The wire's dtype meta (length byte + ``dtype.str``).

    Raises:
        EncodeError: For dtypes that cannot travel (object, void, structured, subarray).
    """
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype:
        raise EncodeError(f"arrays of dtype {dtype} cannot be sent (only plain dtypes)")
    code: bytes = dtype.str.encode("ascii")
    return bytes((len(code),)) + code


def parse_dtype(code: bytes) -> np.dtype[Any]:
    """The dtype a peer's ``dtype.str`` names, if the wire allows it.

    Raises:
        ProtocolError: For an unknown, structured, object or sizeless dtype.
    """
    cached = _DTYPE_CACHE.get(code)
    if cached is not None:
        return cached
    if len(code) > 32:
        raise ProtocolError("dtype string too long")
    if _DTYPE_STR.fullmatch(code) is None:
        raise ProtocolError(f"invalid dtype {code!r} (the wire carries numpy's dtype.str)")
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


def check_code_points(array: np.ndarray[Any, Any]) -> None:
    """Refuse unicode arrays holding values that are not code points (numpy cannot read them).

    Raises:
        ProtocolError: If an element holds a value beyond U+10FFFF.
    """
    codes = array.view(np.dtype(np.uint32).newbyteorder(array.dtype.byteorder))
    if array.size and int(codes.max()) > 0x10FFFF:
        raise ProtocolError("unicode array with values beyond U+10FFFF")
