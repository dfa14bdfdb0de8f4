"""Encoder/Decoder round trips and decoder robustness (docs/protocol.md section 3); no sockets."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import textwrap
import warnings
from collections import OrderedDict
from typing import Any, NamedTuple

import msgpack
import numpy as np
import pytest
from gymnasium.spaces import GraphInstance

from rlmesh.errors import EncodeError, ProtocolError, RLMeshWarning
from rlmesh.wire import format as fmt
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.lenient import sanitize
from tests.support.values import assert_same, encode, roundtrip

# -- helpers ----------------------------------------------------------------------------------


def iter_arrays(value: Any) -> list[np.ndarray[Any, Any]]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for v in value.values() for a in iter_arrays(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in iter_arrays(v)]
    return []


def ext(code: int, payload: bytes) -> bytes:
    """A msgpack ext with any code (also negative ones, which msgpack.ExtType refuses)."""
    n = len(payload)
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    if n in fixed:
        return bytes((fixed[n], code & 0xFF)) + payload
    if n < 256:
        return bytes((0xC7, n, code & 0xFF)) + payload
    if n < 65536:
        return b"\xc8" + struct.pack(">H", n) + bytes((code & 0xFF,)) + payload
    return b"\xc9" + struct.pack(">I", n) + bytes((code & 0xFF,)) + payload


def dtype_meta(code: str | bytes) -> bytes:
    raw = code.encode("ascii") if isinstance(code, str) else code
    return bytes((len(raw),)) + raw


def array_meta(code: str | bytes, shape: tuple[int, ...]) -> bytes:
    return dtype_meta(code) + struct.pack(f"<B{len(shape)}q", len(shape), *shape)


NUMERIC_DTYPES = [
    "float16", "float32", "float64",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "bool", "complex64", "complex128",
]


def make_array(dtype: Any, shape: tuple[int, ...], rng: np.random.Generator
               ) -> np.ndarray[Any, Any]:
    """Random contents of any allowed dtype, with special float values where they fit."""
    dt = np.dtype(dtype)
    native = dt.newbyteorder("=") if dt.byteorder in "<>" else dt
    n = math.prod(shape)
    if dt.kind == "b":
        flat = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(native)
        flat = rng.integers(info.min, info.max, n, dtype=native, endpoint=True)
        if n >= 3:
            flat[0], flat[1] = info.min, info.max
    elif dt.kind == "f":
        flat = (rng.standard_normal(n) * 100).astype(native)
        if n >= 5:
            flat[:4] = (np.nan, np.inf, -np.inf, -0.0)
    elif dt.kind == "c":
        flat = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(native)
    elif dt.kind == "U":
        words = np.array(["", "a", "héllo", "✓✓", "zz\u00e9", "\U0001f600x"], dtype=native)
        flat = words[rng.integers(0, len(words), n)]
    elif dt.kind == "S":
        words = np.array([b"", b"a", b"\x00b", b"\xff\xfe", b"xyz"], dtype=native)
        flat = words[rng.integers(0, len(words), n)]
    else:  # pragma: no cover - test bug
        raise AssertionError(dt)
    return flat.reshape(shape).astype(dt)


# -- plain values -----------------------------------------------------------------------------


class Point(NamedTuple):
    x: int
    y: float


PLAIN_VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int_neg": -17,
    "int64_min": -(2**63),
    "uint64_max": 2**64 - 1,
    "float": 1.25,
    "float_neg_zero": -0.0,
    "float_nan": math.nan,
    "float_inf": -math.inf,
    "str_empty": "",
    "str_unicode": "héllo ✓ \U0001f600",
    "bytes_empty": b"",
    "bytes": bytes(range(256)),
    "list_empty": [],
    "list_mixed": [1, "a", None, 2.5, [True, b"x"]],
    "dict_empty": {},
    "dict_int_keys": {3: "three", -1: "minus one", 0: None},
    "dict_order": {"zeta": 1, "alpha": 2, "mu": 3, 10: 4, "beta": 5},
    "dict_mixed_keys": {"s": 1, 2: 2, 2.5: 3, b"b": 4, True: 5, None: 6},
    "dict_nested": {"a": {"b": {"c": [1, {"d": ()}]}}},
    "tuple_empty": (),
    "tuple": (1, "two", 3.0),
    "tuple_nested": (1, (2, (3, ())), [(4,), {"t": (5, 6)}]),
    "list_of_tuples": [(1, 2), (3,)],
    "dict_tuple_key": {(1, "a"): "tuple key"},
    "bigint_pos": 2**64,
    "bigint_huge": 3**300,
    "bigint_neg": -(2**63) - 1,
    "bigint_neg_huge": -(7**200),
    "bigint_in_tuple": (2**100, [-(2**70)]),
    "complex": 1.5 - 2.25j,
    "complex_special": complex(math.inf, -0.0),
    "complex_zero": 0j,
}


@pytest.mark.parametrize("value", list(PLAIN_VALUES.values()), ids=list(PLAIN_VALUES))
def test_plain_value_round_trip(value: Any) -> None:
    assert_same(roundtrip(value), value)


def test_small_plain_message_has_no_body() -> None:
    header, body = encode([0, 1, {"a": [1, 2.0, "x", b"y", (1,)]}])
    assert body == b""
    assert header


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (OrderedDict([("b", 1), ("a", 2)]), {"b": 1, "a": 2}),
        (Point(1, 2.0), (1, 2.0)),
        (bytearray(b"abc"), b"abc"),
        (memoryview(b"abc"), b"abc"),
        ([np.True_, np.False_], [np.True_, np.False_]),
    ],
    ids=["ordered_dict_as_dict", "namedtuple_as_tuple", "bytearray_as_bytes",
         "memoryview_as_bytes", "numpy_bools_stay_numpy"],
)
def test_subclasses_travel_as_their_base(value: Any, expected: Any) -> None:
    assert_same(roundtrip(value), expected)


def test_int_and_float_subclasses_travel_as_base_types() -> None:
    class MyInt(int):
        pass

    class MyFloat(float):
        pass

    class MyStr(str):
        pass

    out = roundtrip([MyInt(5), MyFloat(0.5), MyStr("s")])
    assert_same(out, [5, 0.5, "s"])


# -- numpy scalars ----------------------------------------------------------------------------


SCALAR_VALUES = {
    "float16": np.float16(-1.5),
    "float16_inf": np.float16(np.inf),
    "float32": np.float32(3.1415927),
    "float32_nan": np.float32(np.nan),
    "float64": np.float64(-0.0),
    "int8_min": np.int8(-128),
    "int16": np.int16(-12345),
    "int32": np.int32(2**31 - 1),
    "int64_min": np.int64(-(2**63)),
    "uint8_max": np.uint8(255),
    "uint16": np.uint16(65535),
    "uint32": np.uint32(2**32 - 1),
    "uint64_max": np.uint64(2**64 - 1),
    "bool_true": np.bool_(True),
    "bool_false": np.bool_(False),
    "complex64": np.complex64(1.5 - 2j),
    "complex128": np.complex128(complex(-0.0, math.inf)),
    "str_": np.str_("héllo"),
    "bytes_": np.bytes_(b"ab\x00c"),
}


@pytest.mark.parametrize("value", list(SCALAR_VALUES.values()), ids=list(SCALAR_VALUES))
def test_numpy_scalar_round_trip_keeps_dtype(value: np.generic) -> None:
    out = roundtrip(value)
    assert_same(out, value)
    assert_same(roundtrip([value, (value,), {"k": value}]), [value, (value,), {"k": value}])


@pytest.mark.parametrize(
    "value", [np.str_(""), np.bytes_(b"")], ids=["empty_str_", "empty_bytes_"])
def test_empty_numpy_string_scalars_round_trip(value: np.generic) -> None:
    # Indexing a string array yields these (np.array(["a", ""])[1]); what the encoder accepts
    # the decoder must accept too, or a peer's info dict breaks the connection.
    assert_same(roundtrip({"name": value}), {"name": value})


# -- numpy arrays -----------------------------------------------------------------------------


def _array_cases() -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(1234)
    cases: dict[str, np.ndarray[Any, Any]] = {}
    for name in NUMERIC_DTYPES:
        dt = np.dtype(name)
        big_n = 1024 // dt.itemsize + 7  # just over the inline limit
        cases[f"{name}-0d"] = make_array(dt, (), rng)
        cases[f"{name}-1d"] = make_array(dt, (5,), rng)
        cases[f"{name}-3d"] = make_array(dt, (2, 3, 4), rng)
        cases[f"{name}-empty"] = make_array(dt, (0, 3), rng)
        cases[f"{name}-large"] = make_array(dt, (big_n,), rng)
        cases[f"{name}-large-2d"] = make_array(dt, (64, 33), rng)
        cases[f"{name}-slice"] = make_array(dt, (40,), rng)[1::3]
        cases[f"{name}-large-slice"] = make_array(dt, (3 * big_n,), rng)[::3]
        cases[f"{name}-transpose"] = make_array(dt, (3, 5), rng).T
        cases[f"{name}-large-transpose"] = make_array(dt, (40, 30), rng).T
        cases[f"{name}-fortran"] = np.asfortranarray(make_array(dt, (6, 7), rng))
        if dt.itemsize > 1 and dt.kind != "b":
            be = dt.newbyteorder(">")
            cases[f"{name}-bigendian"] = make_array(be, (4, 2), rng)
            cases[f"{name}-bigendian-large"] = make_array(be, (big_n,), rng)
            cases[f"{name}-bigendian-0d"] = make_array(be, (), rng)
    for code in ("<U1", "<U7", ">U3", "|S1", "|S9"):
        cases[f"{code}-1d"] = make_array(code, (6,), rng)
        cases[f"{code}-2d"] = make_array(code, (2, 3), rng)
        cases[f"{code}-0d"] = make_array(code, (), rng)
        cases[f"{code}-empty"] = make_array(code, (0, 3), rng)
        cases[f"{code}-large"] = make_array(code, (300,), rng)
        cases[f"{code}-slice"] = make_array(code, (300,), rng)[::-2]
    cases["zero-size-multi"] = np.zeros((3, 0, 2), np.float32)
    cases["many-dims"] = np.arange(2**10, dtype=np.int8).reshape((2,) * 10)
    cases["max-dims"] = np.zeros((1,) * 32, np.uint8)
    cases["broadcast-view"] = np.broadcast_to(np.arange(3.0), (500, 3))
    cases["negative-strides"] = np.arange(600, dtype=np.int32).reshape(20, 30)[::-1, ::-2]
    return cases


ARRAY_CASES = _array_cases()


@pytest.mark.parametrize("array", list(ARRAY_CASES.values()), ids=list(ARRAY_CASES))
def test_array_round_trip(array: np.ndarray[Any, Any]) -> None:
    out = roundtrip(array)
    assert_same(out, array)
    assert out.flags.writeable
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, array)
    before = array.copy()
    if out.size:
        out[...] = np.zeros((), array.dtype)
    assert_same(array, before)  # writing the decoded array leaves the input alone


@pytest.mark.parametrize(
    ("nbytes", "inline"),
    [(0, True), (1, True), (1024, True), (1025, False), (4096, False)],
    ids=["empty", "one-byte", "exactly-1KiB", "1KiB-plus-one", "4KiB"],
)
def test_inline_limit(nbytes: int, inline: bool) -> None:
    array = np.arange(nbytes, dtype=np.uint8)
    header, body = encode(array)
    raw = msgpack.unpackb(header)
    assert isinstance(raw, msgpack.ExtType)
    assert raw.code == (fmt.EXT_ARRAY if inline else fmt.EXT_ARRAY_OOB)
    assert (len(body) == 0) == inline
    if not inline:
        assert len(header) < 100  # the bytes are not also in the header
    assert_same(Decoder().decode(header, body or None), array)


def test_out_of_band_layout_is_aligned_and_ordered() -> None:
    rng = np.random.default_rng(7)
    arrays = [make_array("uint8", (1031,), rng), make_array("float64", (3, 300), rng),
              make_array("int16", (777,), rng), np.arange(5.0),
              make_array("complex64", (2000,), rng)]
    header, body = encode([arrays[0], {"x": (arrays[1], arrays[2])}, arrays[3], [arrays[4]]])
    refs = []

    def hook(code: int, data: bytes) -> Any:
        if code == fmt.EXT_ARRAY_OOB:
            offset, nbytes = struct.unpack_from("<QQ", data, len(data) - 16)
            refs.append((offset, nbytes))
        if code == fmt.EXT_TUPLE:
            return tuple(msgpack.unpackb(data, ext_hook=hook))
        return None

    msgpack.unpackb(header, ext_hook=hook)
    oob = [a for a in arrays if a.nbytes > fmt.INLINE_MAX_BYTES]
    assert [n for _, n in refs] == [a.nbytes for a in oob]
    assert all(offset % 64 == 0 for offset, _ in refs)
    ends = [0] + [o + n for o, n in refs]
    assert all(refs[i][0] >= ends[i] for i in range(len(refs)))  # in order, no overlap
    assert len(body) == ends[-1]
    out = Decoder().decode(header, body)
    assert_same(out, [arrays[0], {"x": (arrays[1], arrays[2])}, arrays[3], [arrays[4]]])
    decoded = iter_arrays(out)
    for i, a in enumerate(decoded):
        assert a.flags.writeable
        for b in decoded[i + 1 :]:
            assert not np.shares_memory(a, b)


def test_decoded_values_do_not_alias_the_header_buffer() -> None:
    value = [np.arange(10, dtype=np.int32), np.float32(2.5), b"bytes", "str", (np.ones(3),)]
    header, _ = encode(value)
    buf = bytearray(header)
    out = Decoder().decode(memoryview(buf), None)
    buf[:] = bytes(len(buf))  # the transport reuses its header buffer for the next frame
    assert_same(out, value)


def test_decoded_arrays_survive_the_next_message() -> None:
    encoder, decoder = Encoder(), Decoder()
    first = np.arange(1000, dtype=np.float64)
    h1, b1 = encode([first], encoder)
    out1 = decoder.decode(h1, b1)
    h2, b2 = encode([np.full(1000, -1.0)], encoder)
    out2 = decoder.decode(h2, b2)
    assert_same(out1[0], first)
    assert_same(out2[0], np.full(1000, -1.0))


def test_encoder_reuse_starts_each_body_afresh() -> None:
    encoder = Encoder()
    big = np.arange(2000, dtype=np.int16)
    h1, _, len1 = encoder.encode([big])
    h2, _, len2 = encoder.encode([big])
    assert len1 == len2 == big.nbytes
    assert h1 == h2
    header, body = encode([big, big], encoder)
    assert_same(Decoder().decode(header, body), [big, big])


def test_encoder_is_usable_after_an_encode_error() -> None:
    encoder = Encoder()
    big = np.arange(3000, dtype=np.int32)
    with pytest.raises(EncodeError):
        encoder.encode([big, object()])
    other = np.arange(500, dtype=np.float64)
    header, buffers, body_len = encoder.encode([other])
    assert body_len == other.nbytes  # nothing left over from the failed message
    body = bytearray()
    for piece in buffers:
        body += memoryview(piece).cast("B")
    assert_same(Decoder().decode(header, body), [other])


# -- GraphInstance ----------------------------------------------------------------------------


GRAPHS = {
    "full": GraphInstance(np.arange(12, dtype=np.float32).reshape(4, 3),
                          np.array([0, 3, 1], dtype=np.int64),
                          np.array([[0, 1], [1, 2], [3, 0]], dtype=np.int64)),
    "no-edges": GraphInstance(np.array([1, 2, 3]), None, None),
    "empty-edges": GraphInstance(np.zeros((2, 2)), np.zeros((0, 5)),
                                 np.zeros((0, 2), dtype=np.int64)),
    "large": GraphInstance(np.random.default_rng(0).random((400, 3)),
                           np.random.default_rng(1).random((300, 2)).astype(np.float32),
                           np.random.default_rng(2).integers(0, 400, (300, 2))),
}


@pytest.mark.parametrize("graph", list(GRAPHS.values()), ids=list(GRAPHS))
def test_graph_instance_round_trip(graph: GraphInstance) -> None:
    out = roundtrip(graph)
    assert_same(out, graph)
    assert_same(roundtrip({"g": [graph, (graph,)]}), {"g": [graph, (graph,)]})


# -- randomized -------------------------------------------------------------------------------


_RANDOM_DTYPES = [*NUMERIC_DTYPES, ">f8", ">i4", ">u2", "<U3", "|S4"]


def random_value(rng: np.random.Generator, depth: int = 0) -> Any:
    kinds = ["none", "bool", "int", "bigint", "float", "complex", "str", "bytes", "scalar",
             "array", "big_array"]
    if depth < 4:
        kinds += ["list", "tuple", "dict", "graph"] * 2
    kind = kinds[rng.integers(len(kinds))]
    if kind == "none":
        return None
    if kind == "bool":
        return bool(rng.integers(2))
    if kind == "int":
        return int(rng.integers(-(2**63), 2**63 - 1, endpoint=True)) >> int(rng.integers(64))
    if kind == "bigint":
        sign = -1 if rng.integers(2) else 1
        return sign * (2**64 + int(rng.integers(2**62)) * 10 ** int(rng.integers(0, 40)))
    if kind == "float":
        return float(rng.choice([rng.standard_normal() * 1e6, math.nan, math.inf, -0.0, 5e-324]))
    if kind == "complex":
        return complex(rng.standard_normal(), rng.standard_normal())
    if kind == "str":
        alphabet = "abcé✓\U0001f600 \x00"
        return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), rng.integers(0, 12)))
    if kind == "bytes":
        return rng.bytes(int(rng.integers(0, 40)))
    if kind == "scalar":
        return make_array(NUMERIC_DTYPES[rng.integers(len(NUMERIC_DTYPES))], (), rng)[()]
    if kind in ("array", "big_array"):
        dtype = _RANDOM_DTYPES[rng.integers(len(_RANDOM_DTYPES))]
        ndim = int(rng.integers(0, 4))
        high = 40 if kind == "big_array" else 4
        shape = tuple(int(d) for d in rng.integers(0, high, ndim))
        array = make_array(dtype, shape, rng)
        if array.ndim >= 2 and rng.integers(2):
            array = array.T
        if array.ndim >= 1 and array.shape[0] > 2 and rng.integers(2):
            array = array[::2]
        return array
    n = int(rng.integers(0, 5))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(n)]
    if kind == "tuple":
        return tuple(random_value(rng, depth + 1) for _ in range(n))
    if kind == "graph":
        edges = None if rng.integers(2) else make_array("float32", (3, 2), rng)
        links = None if edges is None else make_array("int64", (3, 2), rng)
        return GraphInstance(make_array("float64", (4, 2), rng), edges, links)
    out: dict[Any, Any] = {}
    for _ in range(n):
        key = str(rng.integers(1000)) if rng.integers(3) else int(rng.integers(-50, 50))
        out[key] = random_value(rng, depth + 1)
    return out


def test_randomized_nested_values_round_trip() -> None:
    rng = np.random.default_rng(20240601)
    encoder, decoder = Encoder(), Decoder()  # reused, as on a connection
    values = [random_value(rng) for _ in range(400)]
    for i, value in enumerate(values):
        assert_same(roundtrip(value, encoder, decoder), value, f"value #{i}")
        assert_same(roundtrip(value), value, f"value #{i} (fresh codec)")
    assert_same(roundtrip(values, encoder, decoder), values, "all values in one message")


# -- decoder robustness -----------------------------------------------------------------------


def _oob(code: str, shape: tuple[int, ...], offset: int, nbytes: int) -> bytes:
    return ext(fmt.EXT_ARRAY_OOB, array_meta(code, shape) + struct.pack("<QQ", offset, nbytes))


MALFORMED: dict[str, tuple[bytes, bytes | None]] = {
    # msgpack itself
    "empty-header": (b"", None),
    "truncated-array": (b"\x93\x01\x02", None),
    "truncated-str": (b"\xa5ab", None),
    "reserved-byte-c1": (b"\xc1", None),
    "trailing-bytes": (b"\x01\x02", None),
    "invalid-utf8-str": (b"\xa2\xff\xfe", None),
    "array32-length-lie": (b"\xdd\xff\xff\xff\xff\x01", None),
    "map32-length-lie": (b"\xdf\xff\xff\xff\xff\x01\x01", None),
    "bin32-length-lie": (b"\xc6\xff\xff\xff\xff\x00", None),
    "str32-length-lie": (b"\xdb\xff\xff\xff\xffab", None),
    "unhashable-map-key": (b"\x81\x91\x01\x02", None),
    "ext32-length-lie": (b"\xc9\xff\xff\xff\xff\x01\x00", None),
    "deep-plain-arrays": (b"\x91" * 100_000 + b"\xc0", None),
    # unknown ext codes
    "ext-0": (ext(0, b"\x00"), None),
    "ext-8": (ext(8, b"\x00\x01"), None),
    "ext-42": (ext(42, b""), None),
    "ext-127": (ext(127, b"abc"), None),
    "ext-minus-1-bad-length": (ext(-1, b"\x00" * 5), None),
    "ext-minus-5": (ext(-5, b"\x00" * 3), None),
    "ext-minus-128": (ext(-128, b"\x00"), None),
    "unknown-ext-inside-tuple": (ext(fmt.EXT_TUPLE, b"\x91" + ext(99, b"x")), None),
    # truncated / malformed array meta
    "array-empty-payload": (ext(fmt.EXT_ARRAY, b""), None),
    "array-only-dtype-len": (ext(fmt.EXT_ARRAY, b"\x03"), None),
    "array-dtype-len-beyond": (ext(fmt.EXT_ARRAY, b"\x20<f4"), None),
    "array-missing-ndim": (ext(fmt.EXT_ARRAY, dtype_meta("<f4")), None),
    "array-missing-dims": (ext(fmt.EXT_ARRAY, dtype_meta("<f4") + b"\x02" + b"\x01" * 8),
                           None),
    "array-too-many-dims": (ext(fmt.EXT_ARRAY, array_meta("|u1", (1,) * 33) + b"\x00"), None),
    "array-255-dims": (ext(fmt.EXT_ARRAY, dtype_meta("|u1") + b"\xff"), None),
    "array-negative-dim": (ext(fmt.EXT_ARRAY, array_meta("<i4", (-1,))), None),
    "array-negative-dims-cancel": (ext(fmt.EXT_ARRAY, array_meta("<i4", (-2, -2))
                                       + b"\x00" * 16), None),
    "array-min-int64-dim": (ext(fmt.EXT_ARRAY, array_meta("|u1", (-(2**63), 0))), None),
    "array-too-few-bytes": (ext(fmt.EXT_ARRAY, array_meta("<f8", (2, 2)) + b"\x00" * 31),
                            None),
    "array-too-many-bytes": (ext(fmt.EXT_ARRAY, array_meta("<f8", (2,)) + b"\x00" * 17),
                             None),
    "array-huge-shape": (ext(fmt.EXT_ARRAY, array_meta("<f8", (2**62, 2**62)) + b"\x00" * 8),
                         None),
    "array-empty-dtype": (ext(fmt.EXT_ARRAY, array_meta("", (1,)) + b"\x00"), None),
    # out-of-band references
    "oob-no-body": (_oob("<f8", (200,), 0, 1600), None),
    "oob-beyond-body": (_oob("<f8", (200,), 0, 1600), bytearray(1599)),
    "oob-offset-beyond-body": (_oob("|u1", (10,), 2048, 10), bytearray(2048)),
    "oob-offset-u64-max": (_oob("|u1", (10,), 2**64 - 1, 10), bytearray(2048)),
    "oob-nbytes-mismatch": (_oob("<f8", (10,), 0, 81), bytearray(128)),
    "oob-nbytes-short": (_oob("<f8", (10,), 0, 79), bytearray(128)),
    "oob-truncated-ref": (ext(fmt.EXT_ARRAY_OOB, array_meta("<f8", (10,))
                              + struct.pack("<Q", 0)), bytearray(128)),
    "oob-ref-extra-bytes": (ext(fmt.EXT_ARRAY_OOB, array_meta("<f8", (10,))
                                + struct.pack("<QQ", 0, 80) + b"\x00"), bytearray(128)),
    "oob-negative-dim": (_oob("<f8", (-10,), 0, 80), bytearray(128)),
    "oob-huge-shape": (_oob("|u1", (2**40, 2**40), 0, 2**80 % 2**64), bytearray(128)),
    # scalars
    "scalar-empty": (ext(fmt.EXT_SCALAR, b""), None),
    "scalar-dtype-len-beyond": (ext(fmt.EXT_SCALAR, b"\x09<f8"), None),
    "scalar-too-short": (ext(fmt.EXT_SCALAR, dtype_meta("<f8") + b"\x00" * 7), None),
    "scalar-too-long": (ext(fmt.EXT_SCALAR, dtype_meta("<f4") + b"\x00" * 5), None),
    "scalar-no-bytes": (ext(fmt.EXT_SCALAR, dtype_meta("<i4")), None),
    "scalar-garbage-dtype": (ext(fmt.EXT_SCALAR, dtype_meta(b"\xff\xfe") + b"\x00"), None),
    "scalar-bad-dtype": (ext(fmt.EXT_SCALAR, dtype_meta("<q9") + b"\x00"), None),
    # containers
    "tuple-not-an-array": (ext(fmt.EXT_TUPLE, b"\x01"), None),
    "tuple-map-payload": (ext(fmt.EXT_TUPLE, b"\x80"), None),
    "tuple-invalid-msgpack": (ext(fmt.EXT_TUPLE, b"\xc1"), None),
    "tuple-truncated": (ext(fmt.EXT_TUPLE, b"\x93\x01"), None),
    "tuple-trailing": (ext(fmt.EXT_TUPLE, b"\x90\x01"), None),
    "tuple-empty-payload": (ext(fmt.EXT_TUPLE, b""), None),
    "graph-two-parts": (ext(fmt.EXT_GRAPH, b"\x92\xc0\xc0"), None),
    "graph-four-parts": (ext(fmt.EXT_GRAPH, b"\x94\xc0\xc0\xc0\xc0"), None),
    "graph-not-a-list": (ext(fmt.EXT_GRAPH, b"\x81\xa1a\x01"), None),
    "graph-invalid-msgpack": (ext(fmt.EXT_GRAPH, b"\xc1"), None),
    # big ints and complex
    "bigint-letters": (ext(fmt.EXT_BIGINT, b"12ab"), None),
    "bigint-empty": (ext(fmt.EXT_BIGINT, b""), None),
    "bigint-non-ascii": (ext(fmt.EXT_BIGINT, "١٢٣".encode()), None),
    "bigint-too-long": (ext(fmt.EXT_BIGINT, b"9" * 5000), None),
    "bigint-float-text": (ext(fmt.EXT_BIGINT, b"1e30"), None),
    "complex-short": (ext(fmt.EXT_COMPLEX, b"\x00" * 8), None),
    "complex-long": (ext(fmt.EXT_COMPLEX, b"\x00" * 17), None),
    "complex-empty": (ext(fmt.EXT_COMPLEX, b""), None),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("header", "body"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_message_raises_protocol_error(header: bytes, body: bytes | None) -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError):
        decoder.decode(header, body)
    # the decoder stays usable
    assert decoder.decode(msgpack.packb([1, "ok"]), None) == [1, "ok"]


REFUSED_DTYPES = {
    "object": "|O",
    "object-short": "O",
    "object-8": "O8",
    "void": "|V8",
    "void-short": "V4",
    "structured": "i4,f8",
    "structured-list-text": "[('a', '<i4')]",
    "subarray": "(2,)<i4",
    "subarray-3d": "(2,2,2)f8",
    "unicode-zero-size": "<U0",
    "bytes-zero-size": "|S0",
    "over-long-33": "<" + "f" * 32,
    "over-long-255": "<f4" + " " * 252,
    "over-long-repeated": "<f4" * 11,
    "huge-unicode": "<U99999999999999999999",
    "invalid-code": "<z8",
    "non-ascii": "<f\u00e94",
    "python-expr": "__import__('os')",
}


def _dtype_case_bytes(code: str) -> bytes:
    try:
        return code.encode("ascii")
    except UnicodeEncodeError:
        return code.encode("utf-8")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", list(REFUSED_DTYPES.values()), ids=list(REFUSED_DTYPES))
@pytest.mark.parametrize("where", ["inline-array", "oob-array", "scalar"])
def test_refused_dtype_strings_raise_protocol_error(code: str, where: str) -> None:
    raw = _dtype_case_bytes(code)
    if where == "inline-array":
        header = ext(fmt.EXT_ARRAY, dtype_meta(raw) + struct.pack("<Bq", 1, 2) + b"\x00" * 16)
        body = None
    elif where == "oob-array":
        header = ext(fmt.EXT_ARRAY_OOB, dtype_meta(raw) + struct.pack("<BqQQ", 1, 2, 0, 16))
        body = bytearray(64)
    else:
        header = ext(fmt.EXT_SCALAR, dtype_meta(raw) + b"\x00" * 8)
        body = None
    with pytest.raises(ProtocolError):
        Decoder().decode(header, body)


_DEEP_SCRIPT = textwrap.dedent("""
    import sys
    import msgpack
    from rlmesh.wire.decoder import Decoder
    from rlmesh.errors import ProtocolError
    code, depth = int(sys.argv[1]), int(sys.argv[2])
    inner = msgpack.packb(None)
    for _ in range(depth):
        if code == 5:  # graph: [nested, nil, nil]
            inner = msgpack.packb(msgpack.ExtType(code, b"\\x93" + inner + b"\\xc0\\xc0"))
        else:
            inner = msgpack.packb(msgpack.ExtType(code, b"\\x91" + inner))
    try:
        Decoder().decode(inner, None)
    except ProtocolError:
        print("ProtocolError", len(inner))
    else:
        print("decoded", len(inner))
""")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("depth", [300, 3000], ids=["depth-300", "depth-3000"])
@pytest.mark.parametrize("code", [fmt.EXT_TUPLE, fmt.EXT_GRAPH], ids=["tuple", "graph"])
def test_deeply_nested_extensions_do_not_crash_the_decoder(code: int, depth: int) -> None:
    # Run in a child process: a C stack overflow would kill the whole test session.
    # Each level costs only a few header bytes, so any peer can send this within a few KiB.
    result = subprocess.run([sys.executable, "-c", _DEEP_SCRIPT, str(code), str(depth)],
                            capture_output=True, text=True, timeout=25)
    assert result.returncode == 0, (
        f"decoding a {depth}-deep nested ext {code} header killed the process "
        f"(exit code {result.returncode}): {result.stderr[-500:]}")
    assert result.stdout.split()[0] in ("ProtocolError", "decoded"), result.stdout


def test_moderately_nested_tuples_still_decode() -> None:
    value: Any = None
    for _ in range(50):
        value = (value, [value] if value is None else 1)
    assert_same(roundtrip(value), value)


# -- encoder refusals -------------------------------------------------------------------------


class _Opaque:
    pass


REFUSED_VALUES = {
    "object-array-of-opaque": np.array([1, _Opaque(), None], dtype=object),
    "object-scalar-in-list": [np.array([object()], dtype=object)],
    "structured-array": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
    "structured-record": np.zeros(1, dtype=[("a", "<i4")])[0],
    "void-array": np.zeros(3, dtype="V4"),
    "object": object(),
    "custom-instance": _Opaque(),
    "custom-class": _Opaque,
    "set": {1, 2},
    "frozenset": frozenset({1}),
    "nested-in-dict": {"a": [1, {"b": (2, {3})}]},
    "nested-in-tuple": (1, (2, object())),
    "nested-in-graph": GraphInstance(np.zeros(2), None, [object()]),
    "unencodable-key": {frozenset(): 1},
    "function": len,
    "range": range(3),
    "too-many-dims": np.zeros((1,) * 33, dtype=np.uint8),
}


@pytest.mark.parametrize("value", list(REFUSED_VALUES.values()), ids=list(REFUSED_VALUES))
def test_encoder_refuses_unencodable_values(value: Any) -> None:
    with pytest.raises(EncodeError):
        Encoder().encode([0, 1, value])


def test_encoder_refuses_deeply_nested_tuples_with_encode_error() -> None:
    value: Any = None
    for _ in range(5000):
        value = (value,)
    with pytest.raises(EncodeError):
        Encoder().encode(value)


def test_encoder_refuses_deeply_nested_lists_with_encode_error() -> None:
    value: Any = None
    for _ in range(5000):
        value = [value]
    with pytest.raises(EncodeError):
        Encoder().encode(value)


# -- sanitize ---------------------------------------------------------------------------------


class _SanitizeProbeAlpha:
    def __repr__(self) -> str:
        return "<alpha>"


class _SanitizeProbeBeta:
    def __repr__(self) -> str:
        return "<beta>"


class _SanitizeProbeBadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _rlmesh_warnings(record: list[warnings.WarningMessage], name: str) -> list[str]:
    return [str(w.message) for w in record
            if issubclass(w.category, RLMeshWarning) and name in str(w.message)]


def test_sanitize_replaces_unencodable_leaves_with_repr() -> None:
    arr = np.arange(4, dtype=np.int16)
    obj_arr = np.array([None, 1, _SanitizeProbeAlpha()], dtype=object)
    structured = np.zeros(2, dtype=[("a", "<i4")])
    value = {
        "ok": [1, 2.5, "s", b"b", None, True, 2**80, 1j],
        "array": arr,
        "scalar": np.float16(0.5),
        "set": {3},
        "obj": _SanitizeProbeAlpha(),
        "objarr": obj_arr,
        "structured": structured,
        "tuple": (1, _SanitizeProbeAlpha(), (frozenset({1}),)),
        "graph": GraphInstance(np.zeros(2), None, None),
        7: {"deep": [[_SanitizeProbeAlpha()]]},
        "bytearray": bytearray(b"xy"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RLMeshWarning)
        out = sanitize(value)
    expected = {
        "ok": [1, 2.5, "s", b"b", None, True, 2**80, 1j],
        "array": arr,
        "scalar": np.float16(0.5),
        "set": repr({3}),
        "obj": "<alpha>",
        "structured": repr(structured),
        "tuple": (1, "<alpha>", (repr(frozenset({1})),)),
        "graph": GraphInstance(np.zeros(2), None, None),
        7: {"deep": [["<alpha>"]]},
        "bytearray": b"xy",
    }
    for result in (out, roundtrip(out)):  # and it now encodes
        objarr = result.pop("objarr")
        assert objarr.dtype == object and objarr.tolist() == [None, 1, "<alpha>"]
        assert_same(result, expected)


def test_sanitize_leaves_encodable_values_unchanged() -> None:
    rng = np.random.default_rng(99)
    for _ in range(50):
        value = random_value(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RLMeshWarning)  # nothing to replace: no warning
            assert_same(sanitize(value), value)


def test_sanitize_warns_once_per_type() -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sanitize({"a": _SanitizeProbeBeta(), "b": [_SanitizeProbeBeta()]})
        sanitize({"c": _SanitizeProbeBeta()})
        out = sanitize(_SanitizeProbeBeta())
    assert out == "<beta>"
    messages = _rlmesh_warnings(record, "_SanitizeProbeBeta")
    assert len(messages) == 1, messages


def test_sanitize_survives_a_failing_repr() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RLMeshWarning)
        out = sanitize({"x": _SanitizeProbeBadRepr()})
    assert isinstance(out["x"], str)
    assert "_SanitizeProbeBadRepr" in out["x"]


def test_sanitize_replaces_unencodable_keys() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RLMeshWarning)
        out = sanitize({frozenset({1}): "v", "k": "w", 3: "x"})
    assert out == {repr(frozenset({1})): "v", "k": "w", 3: "x"}
    assert_same(roundtrip(out), out)


def test_sanitize_bounds_nesting_depth() -> None:
    value: Any = "leaf"
    for _ in range(200):
        value = [value]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RLMeshWarning)
        out = sanitize({"deep": value})
    header, body = encode(out)  # must encode without hitting any recursion limit
    decoded = Decoder().decode(header, body or None)
    depth = 0
    node = decoded["deep"]
    while isinstance(node, list):
        node = node[0]
        depth += 1
    assert isinstance(node, str)
    assert depth < 200


@pytest.mark.timeout(10)
def test_msgpack_timestamp_extension_decodes_as_timestamp() -> None:
    # Ext -1 is reserved by msgpack itself; rlmesh peers never send it, and docs/protocol.md
    # says a decoder yields msgpack.Timestamp for it (inert data, no code path of ours).
    value = Decoder().decode(ext(-1, b"\x00\x00\x00\x07"), None)
    assert isinstance(value, msgpack.Timestamp)
    assert value.seconds == 7


@pytest.mark.parametrize("value", [
    np.array([1, "a", None, (2, 3), {"k": np.float32(1)}], dtype=object),
    np.empty(0, dtype=object),
    np.empty((0, 3), dtype=object),
    np.array([[np.arange(2), None], [b"x", 2.5]], dtype=object),
], ids=["mixed", "empty", "empty-2d", "2d-with-arrays"])
def test_object_arrays_round_trip_item_by_item(value: np.ndarray) -> None:
    # Gymnasium's vector infos (final_obs, unknown objects) are object arrays.
    out = roundtrip(value)
    assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == value.shape
    for got, want in zip(out.ravel().tolist(), value.ravel().tolist(), strict=True):
        assert_same(got, want)
