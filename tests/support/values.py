"""Values as the wire carries them: codec round trips and strict, bit-exact comparison."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder


def encode(value: Any, encoder: Encoder | None = None) -> tuple[bytes, bytearray]:
    """Encode ``value`` and join the body pieces into one freshly allocated bytearray."""
    header, buffers, body_len = (encoder or Encoder()).encode(value)
    body = bytearray()
    for piece in buffers:
        body += memoryview(piece).cast("B")
    assert len(body) == body_len, "body_len does not match the buffers"
    return header, body


def roundtrip(value: Any, encoder: Encoder | None = None, decoder: Decoder | None = None) -> Any:
    """Encode and decode ``value`` as a message would travel."""
    header, body = encode(value, encoder)
    # The transport hands the decoder a memoryview header and None for an empty body.
    return (decoder or Decoder()).decode(memoryview(header), body if body else None)


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_same(actual: Any, expected: Any, path: str = "value") -> None:
    """Strict recursive equality: container types, dtypes (with byte order), shapes, bytes.

    Dict key order and key types count; floats and complex numbers compare bit for bit (so
    ``nan`` equals the same ``nan`` and ``-0.0`` differs from ``0.0``).
    """
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__qualname__} != {type(expected).__qualname__} "
        f"({actual!r:.80} vs {expected!r:.80})")
    if isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.dtype.str == expected.dtype.str, f"{path}: dtype {actual.dtype.str} != " \
            f"{expected.dtype.str}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for (ka, va), (ke, ve) in zip(actual.items(), expected.items(), strict=True):
            assert_same(ka, ke, f"{path} key {ke!r}")
            assert_same(va, ve, f"{path}[{ke!r}]")
    elif isinstance(expected, (list, tuple)):  # includes GraphInstance (type checked above)
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, complex):
        assert _float_bits(actual.real) == _float_bits(expected.real), f"{path}: {actual!r}"
        assert _float_bits(actual.imag) == _float_bits(expected.imag), f"{path}: {actual!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_same_values(actual: Any, expected: Any, path: str = "value", *,
                       key_order: bool = True) -> None:
    """Recursive strict equality for env results; object arrays compare item by item.

    Types, dtypes (with byte order), shapes and bytes must match; floats compare bit for bit.
    ``key_order=False`` compares dict keys as sets (values are still compared strictly).
    """
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__qualname__} != {type(expected).__qualname__} "
        f"({actual!r:.100} vs {expected!r:.100})")
    if isinstance(expected, np.ndarray):
        assert actual.dtype.str == expected.dtype.str, (
            f"{path}: dtype {actual.dtype.str} != {expected.dtype.str}")
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.kind == "O":
            for index in np.ndindex(expected.shape):
                assert_same_values(actual[index], expected[index], f"{path}[{index}]",
                                   key_order=key_order)
        else:
            assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, np.generic):
        assert actual.dtype.str == expected.dtype.str, (
            f"{path}: dtype {actual.dtype.str} != {expected.dtype.str}")
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        if key_order:
            assert list(actual) == list(expected), (
                f"{path}: keys {list(actual)} != {list(expected)}")
        else:
            assert set(actual) == set(expected), (
                f"{path}: keys {sorted(actual)} != {sorted(expected)}")
        for key in expected:
            assert_same_values(actual[key], expected[key], f"{path}[{key!r}]",
                               key_order=key_order)
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_values(a, e, f"{path}[{i}]", key_order=key_order)
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def joined(buffers: list[Any]) -> bytes:
    """The body these pieces make, as a connection sends them."""
    return b"".join(bytes(memoryview(piece).cast("B")) for piece in buffers)


def reply_header(encoded: tuple[bytes, list[Any], int] | None) -> bytes:
    """The header of a fixed reply that travels whole in it (no body)."""
    assert encoded is not None
    header, buffers, body_len = encoded
    assert buffers == [] and body_len == 0
    return header
