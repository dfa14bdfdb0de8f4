"""Fuzz fault suite: hostile bytes never crash, stall or disturb an rlmesh server.

The issue this serves asks that "malformed, truncated and oversized frames and random bytes
never crash or stall the server and never disturb other sessions", checked by a fuzz test
of at least 10,000 cases in CI. Hypothesis generates the cases, derandomized and without an
example database, so every CI run executes the same cases.

Two layers are fuzzed:

1. **The decoder** (``rlmesh.wire.decoder.Decoder``), in process, where most cases run: random
   bytes, msgpack structures carrying extension types with bad codes, dtypes, dimensions,
   offsets and sizes, deep nesting, and real encoded CartPole messages with bytes flipped,
   cut, inserted or appended. The decoder must return a value or raise ``ProtocolError``,
   never anything else, never hand out arrays larger than the message that described them
   (``docs/protocol.md``: every length is checked before memory is reserved), and give the
   same result whether its caches are warm or cold.
2. **A real server** (``rlmesh serve CartPole-v1`` in a child process on 127.0.0.1 port 0),
   over raw sockets: random bytes, lying and oversized length prefixes, the shared-memory
   flag where no region exists, garbage and mutated headers, truncated frames, requests with
   unknown ops, wrong arity, bad seeds, options and actions, attribute requests (``GET_ATTR``,
   ``CALL``, ``SET_ATTR``) with hostile names and arguments, before and after a valid HELLO,
   one case per fresh connection or many on one long-lived session. A small model of the
   protocol (sections 2, 5, 7, 8 and 13) predicts, for every case, exactly which replies the
   server owes and whether it then hangs up; each reply must arrive, and the connection
   must close, within ``IO_TIMEOUT``. Two witness sessions (one over plain TCP, one with the
   same-host fast path) stay open throughout and step in lockstep with a local
   ``gymnasium.make("CartPole-v1")``, proving other sessions are undisturbed; at the end the
   server must still be alive, answer a probe at once, serve a new session, and have logged
   no internal error.

Bugs this suite found (a zero-width dtype that numpy widened into gigabytes, a session that
died on hostile values in repr() or comparisons, unicode arrays beyond U+10FFFF) are fixed;
the regression tests at the end pin each of them.
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
import struct
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import msgpack
import numpy as np
import pytest
from gymnasium.spaces import Discrete, GraphInstance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlmesh
from rlmesh import ServeOptions
from rlmesh.errors import EncodeError, ProtocolError
from rlmesh.numpy import RemoteEnv
from rlmesh.testing import ServerProcess
from rlmesh.transport import shm
from rlmesh.transport.stream import PREFIX, SHM_FLAG
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from tests.support.values import encode

# -- budgets ------------------------------------------------------------------------------------

TARGETS: dict[str, int] = {
    "test_decoder_random_bytes": 2000,
    "test_decoder_extension_values": 2500,
    "test_decoder_structured_values": 2000,
    "test_decoder_mutated_messages": 2500,
    "test_decoder_deep_nesting": 300,
    "test_server_fresh_connections": 2000,
    "test_server_after_handshake": 1500,
    "test_server_long_lived_session": 2000,
}
"""Cases each fuzz test must execute; a test that runs fewer fails."""
assert sum(TARGETS.values()) >= 10_000

CASES: Counter[str] = Counter()
"""Cases executed so far, by test name (see :func:`_report_totals`)."""

IO_TIMEOUT = 2.0
"""Longest the server may take to answer or to hang up, for any case."""
WITNESS_EVERY = 50
"""Network cases between two checks of the witness sessions."""
REPLY_LIMIT = 64 * 1024 * 1024
"""Largest reply frame this suite accepts from the server (all legitimate ones are tiny)."""

FATAL_CODES = frozenset({"protocol_error", "version_mismatch", "message_too_large",
                         "env_busy", "server_full", "auth_failed", "shutting_down",
                         "internal", "resume_failed"})
NONFATAL_CODES = frozenset({"invalid_action", "reset_needed", "env_error", "encode_error",
                            "not_allowed", "no_attribute"})
OK = "ok"

OP_HELLO, OP_RESET, OP_STEP, OP_RENDER, OP_CLOSE, OP_PING, OP_AUTH, OP_SHUTDOWN = range(8)
OP_REGION = 13
OP_GET_ATTR, OP_CALL, OP_SET_ATTR = 10, 11, 12


def _fuzz_settings(name: str, **extra: Any) -> settings:
    """Deterministic hypothesis settings running exactly the budget of test ``name``."""
    return settings(max_examples=TARGETS[name], deadline=None, derandomize=True,
                    database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example,
                                           HealthCheck.filter_too_much], **extra)


@pytest.fixture(autouse=True)
def _record_tries(record_property: Callable[[str, object], None]) -> Iterator[None]:
    """Tell ``benchmarks/faults.py`` how many cases this test executed."""
    before = sum(CASES.values())
    yield
    if sum(CASES.values()) > before:
        record_property("tries", sum(CASES.values()) - before)


@pytest.fixture(scope="module", autouse=True)
def _report_totals() -> Iterator[None]:
    """Print the executed cases per layer; with every fuzz test run, demand >= 10,000."""
    yield
    decoder = sum(n for name, n in CASES.items() if name.startswith("test_decoder"))
    network = sum(n for name, n in CASES.items() if name.startswith("test_server"))
    print(f"\nfuzz cases executed: decoder {decoder}, network {network}, "
          f"total {decoder + network}")
    if set(TARGETS) <= set(CASES):
        assert decoder + network >= 10_000


# -- canonical values ------------------------------------------------------------------------


def canon(value: Any) -> bytes | None:
    """A bit-exact fingerprint of a decoded value (its encoding), or None if unencodable."""
    try:
        header, body = encode(value, Encoder())
    except EncodeError:
        return None
    return bytes(header) + b"|" + bytes(body)


def check_footprint(value: Any, budget: int) -> None:
    """No array in ``value`` may be larger than the ``budget`` bytes of message it came from.

    Walks iteratively (decoded values may be nested about 1,000 levels deep) and checks each
    array's size before anything reads its memory.
    """
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        assert seen <= 4 * budget + 16, "decoded value has more items than its message bytes"
        if isinstance(item, np.ndarray):
            if item.dtype.kind == "O":
                assert item.size <= budget, f"object array of {item.size} items from " \
                    f"{budget} bytes"
                stack.extend(item.ravel().tolist())
            else:
                assert item.nbytes <= budget, (
                    f"decoded an array of {item.nbytes} bytes ({item.dtype}, shape "
                    f"{item.shape}) from a message of {budget} bytes")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):  # GraphInstance is a tuple
            stack.extend(item)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_WARM_DECODER = Decoder()
"""Shared by every decoder case, so its meta cache sees everything the fuzzer sends."""


def check_decoder(name: str, header: bytes, body: bytes | None) -> None:
    """The decoder's contract for one message (see the module docstring)."""
    CASES[name] += 1
    budget = len(header) + (len(body) if body else 0)
    results: list[bytes | str | None] = []
    for decoder in (Decoder(), _WARM_DECODER):
        try:
            value = decoder.decode(memoryview(header), bytearray(body) if body else None)
        except ProtocolError as exc:
            assert not _caused_by(exc, MemoryError), (
                f"the decoder tried a huge allocation: {exc}")
            results.append("ProtocolError")
            continue
        except Exception as exc:
            raise AssertionError(f"Decoder.decode raised {type(exc).__qualname__}, not "
                                 f"ProtocolError: {exc!r:.300}") from exc
        check_footprint(value, budget)
        results.append(canon(value))
    assert results[0] == results[1], "a warm decoder and a fresh one disagree"


# -- strategies: plain values ----------------------------------------------------------------

INTS = st.one_of(st.integers(-(2**63), 2**64 - 1),
                 st.sampled_from([0, 1, -1, 2, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64 - 1]))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.floats(), st.text(max_size=12),
                    st.binary(max_size=12))
KEYS = st.one_of(st.none(), st.booleans(), INTS, st.text(max_size=8), st.binary(max_size=8),
                 st.floats(allow_nan=False))

# Numeric dtypes only: unicode arrays are left out of everything sent to the server, because
# arrays with invalid code points end the session (see test_session_answers_hostile_values).
SERVER_DTYPES = ["|b1", "|i1", "<i2", ">i4", "<i8", "|u1", "<u2", "<u4", ">u8", "<f2", "<f4",
                 ">f8", "<c8", "<c16", "<M8[s]", "<m8[ms]", "|S4"]


@st.composite
def np_arrays(draw: st.DrawFn) -> np.ndarray[Any, Any]:
    """A numpy array of an allowed dtype with arbitrary bytes; sometimes big (out of band)."""
    dtype = np.dtype(draw(st.sampled_from(SERVER_DTYPES)))
    if draw(st.integers(0, 9)) == 0:
        count = draw(st.integers(129, 700))
        data = np.random.default_rng(draw(st.integers(0, 2**32))).bytes(count * dtype.itemsize)
        return np.frombuffer(data, dtype).copy()
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = draw(st.binary(min_size=size, max_size=size))
    return np.frombuffer(data, dtype).reshape(shape).copy()


@st.composite
def np_scalars(draw: st.DrawFn) -> np.generic:
    dtype = np.dtype(draw(st.sampled_from(SERVER_DTYPES)))
    data = draw(st.binary(min_size=dtype.itemsize, max_size=dtype.itemsize))
    scalar: np.generic = np.frombuffer(data, dtype)[0]
    return scalar


def _graph(nodes: np.ndarray[Any, Any], edges: Any, links: Any) -> GraphInstance:
    return GraphInstance(nodes, edges, links)


def _object_array(items: list[Any]) -> np.ndarray[Any, Any]:
    array = np.empty(len(items), dtype=object)
    array[:] = items if items else []
    return array


RICH_LEAVES = st.one_of(
    SCALARS, np_arrays(), np_scalars(),
    st.integers(2**64, 2**300), st.integers(-(2**300), -(2**63) - 1),
    st.complex_numbers(),
)
RICH = st.recursive(
    RICH_LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.lists(kids, max_size=4).map(tuple),
        st.dictionaries(KEYS, kids, max_size=3),
        st.lists(kids, max_size=3).map(_object_array),
        st.builds(_graph, np_arrays(), st.none() | np_arrays(), st.none() | np_arrays()),
    ),
    max_leaves=8,
)
"""Values rlmesh's Encoder can send: what a client may legitimately put in a request."""


# -- strategies: extension-type garbage ------------------------------------------------------

GOOD_DTYPES = [b"<f4", b"<f8", b"<f2", b"|u1", b"|i1", b"<i2", b">i4", b"<i8", b"<u8",
               b"|b1", b"<c8", b">c16", b"|S3", b"<U2", b">U1", b"<M8[s]", b"<m8[ns]", b"|S0",
               b"<U0", b"f4", b"int64", b"?", b"p"]
BAD_DTYPES = [b"|O", b"O", b"|V4", b"V8", b"<i4,<i4", b"(2,)<i4", b"[('a','<i4')]", b"T",
              b"<f3", b"foo", b"", b"|S-1", b"<U99999999999", b"S9223372036854775807",
              b"M8[xyz]", b"\xff\xfe", b"a" * 40, b"<U2147483647", b"|S2147483648", b"O8",
              b"object", b"void", b"<i4:x"]
EDGE_DTYPES = frozenset({b"|S0", b"<U0", b"|S3", b"<U2", b"|b1", b"|u1", b">c16", b"<M8[s]"})
"""Dtypes for extreme shapes: zero, small and large item sizes."""
DIMS = st.one_of(
    st.integers(0, 6),
    st.sampled_from([2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, -1, -(2**63)]),
    st.integers(-(2**63), 2**63 - 1),
)
KNOWN_EXT = frozenset({-1, 1, 2, 3, 4, 5, 6, 7, 8})


def _itemsize(code: bytes) -> int | None:
    try:
        with warnings.catch_warnings():  # (numpy's deprecated aliases: the wire refuses them)
            warnings.simplefilter("ignore", DeprecationWarning)
            return int(np.dtype(code.decode("ascii")).itemsize)
    except Exception:
        return None


@st.composite
def array_meta(draw: st.DrawFn, dtypes: list[bytes]) -> tuple[bytes, int | None]:
    """Array meta (dtype meta, ndim, dims) and the data size it implies (None: none valid).

    A third each: well formed with small dims; well formed with extreme dims (huge,
    negative, overflowing products); garbage (bad dtype strings, lying lengths and ndim).
    """
    mode = draw(st.sampled_from(["valid", "extreme", "garbage"]))
    if mode == "garbage":
        code = draw(st.one_of(st.sampled_from(dtypes), st.sampled_from(BAD_DTYPES),
                              st.binary(max_size=36)))
        n = draw(st.one_of(st.just(len(code)), st.integers(0, 255)))
        ndim = draw(st.one_of(st.integers(0, 3), st.integers(0, 40), st.just(255)))
        count = draw(st.one_of(st.just(min(ndim, 40)), st.integers(0, 40)))
        dims = draw(st.lists(DIMS, min_size=count, max_size=count))
    else:
        edge = [code for code in dtypes if code in EDGE_DTYPES] or dtypes
        code = draw(st.sampled_from(dtypes if mode == "valid" else edge))
        n = len(code)
        count = ndim = draw(st.integers(0, 3) if mode == "valid" else st.integers(1, 33))
        dims = draw(st.lists(st.integers(0, 5) if mode == "valid" else DIMS,
                             min_size=count, max_size=count))
    itemsize = _itemsize(code)
    size = None
    if itemsize is not None and n == len(code) and count == ndim and all(d >= 0 for d in dims):
        size = itemsize * int(np.prod(dims, dtype=object))
    meta = bytes([n & 255]) + code[:255] + bytes([ndim]) + struct.pack(f"<{count}q", *dims)
    return meta, size


@st.composite
def ext_arrays(draw: st.DrawFn, dtypes: list[bytes]) -> msgpack.ExtType:
    """Ext 1 (inline) or 2 (out of band) arrays, sized right or wrong."""
    meta, size = draw(array_meta(dtypes))
    if draw(st.booleans()):
        offset = draw(st.one_of(st.integers(0, 64).map(lambda k: 64 * k),
                                st.integers(0, 4096), st.integers(0, 2**64 - 1)))
        nbytes = draw(st.one_of(st.just(size if size is not None and size < 2**64 else 0),
                                st.integers(0, 4096), st.integers(0, 2**64 - 1)))
        extra = draw(st.sampled_from([b"", b"", b"\x00"]))
        return msgpack.ExtType(2, meta + struct.pack("<QQ", offset, nbytes) + extra)
    if size is not None and size <= 4096 and draw(st.booleans()):
        data = draw(st.binary(min_size=size, max_size=size))
    else:
        data = draw(st.binary(max_size=64))
    return msgpack.ExtType(1, meta + data)


@st.composite
def ext_scalars(draw: st.DrawFn, dtypes: list[bytes]) -> msgpack.ExtType:
    code = draw(st.one_of(st.sampled_from(dtypes), st.sampled_from(dtypes),
                          st.sampled_from(BAD_DTYPES), st.binary(max_size=36)))
    n = draw(st.one_of(st.just(len(code)), st.just(len(code)), st.integers(0, 255)))
    itemsize = _itemsize(code)
    if itemsize is not None and itemsize <= 64 and draw(st.booleans()):
        data = draw(st.binary(min_size=itemsize, max_size=itemsize))
    else:
        data = draw(st.binary(max_size=24))
    return msgpack.ExtType(3, bytes([n & 255]) + code[:255] + data)


def _ascii(text: str) -> bytes:
    return text.encode("ascii")


BIGINT_DATA = st.one_of(
    st.integers(-(2**400), 2**400).map(str).map(_ascii),
    st.text(alphabet="0123456789_ -+xXabc.e", max_size=40).map(_ascii),
    st.binary(max_size=40),
    st.sampled_from([b"9" * 4096, b"9" * 4097, b"1" * 5000, b"", b"-", b"\xff"]),
)


def ext_leaves(dtypes: list[bytes]) -> st.SearchStrategy[msgpack.ExtType]:
    """Extension values: arrays, scalars, big ints, complex, timestamps, unknown codes."""
    unknown = st.integers(-128, 127).filter(lambda c: c not in KNOWN_EXT)
    return st.one_of(
        ext_arrays(dtypes),
        ext_scalars(dtypes),
        BIGINT_DATA.map(lambda d: msgpack.ExtType(6, d)),
        st.binary(max_size=20).map(lambda d: msgpack.ExtType(7, d)),
        st.binary(max_size=16).map(lambda d: _ext(-1, d)),
        st.builds(_ext, unknown, st.binary(max_size=16)),
    )


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """An ExtType with any code in -128..127 (the constructor refuses negative ones)."""
    ext: msgpack.ExtType = tuple.__new__(msgpack.ExtType, (code, data))
    return ext


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


@st.composite
def ext_object_arrays(draw: st.DrawFn, kids: st.SearchStrategy[Any]) -> msgpack.ExtType:
    """Ext 8: ``[shape, items]`` with the shape right, wrong, huge or of the wrong type."""
    items = draw(st.lists(kids, max_size=4))
    shape = draw(st.one_of(
        st.just([len(items)]),
        st.lists(DIMS, max_size=4),
        st.sampled_from([[2**62, 0], [0, 2**63 - 1], [-1], [True], [1.0], "x", None]),
        st.lists(st.integers(0, 3), min_size=33, max_size=40),
    ))
    parts = draw(st.sampled_from([[shape, items], [shape], [shape, items, 0], shape]))
    return msgpack.ExtType(8, _pack(parts))


def structured(dtypes: list[bytes], max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """msgpack-packable values with extension garbage anywhere, nested in ext containers."""
    containers = st.sampled_from([4, 5, 8])
    return st.recursive(
        st.one_of(SCALARS, ext_leaves(dtypes)),
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.dictionaries(KEYS, kids, max_size=3),
            st.builds(lambda items, code: msgpack.ExtType(code, _pack(items)),
                      st.lists(kids, max_size=4), containers),
            st.builds(lambda item, code: msgpack.ExtType(code, _pack(item)), kids, containers),
            ext_object_arrays(kids),
        ),
        max_leaves=max_leaves,
    )


# -- strategies: mutations of real messages --------------------------------------------------


@functools.lru_cache(maxsize=1)
def corpus() -> list[tuple[bytes, bytes]]:
    """Real messages of a CartPole session (and a few richer ones), encoded by rlmesh."""
    env = gym.make("CartPole-v1")
    obs, info = env.reset(seed=3)
    step = env.step(1)
    env.close()
    hello = {"rlmesh": 1, "client": "rlmesh-python/0.1.0", "capabilities": ["shm"],
             "shm": {"name": "rlmesh-1-00", "size": 4096, "host": "x"}}
    error = {"code": "invalid_action", "message": "no", "type": None, "traceback": None,
             "fatal": False}
    messages: list[Any] = [
        [OP_HELLO, 0, hello], [OP_RESET, 1, 42, None], [OP_RESET, 2, None, {"low": -0.1}],
        [OP_STEP, 3, np.int64(1)], [OP_STEP, 4, 0], [OP_PING, 5, "ping"], [OP_RENDER, 6],
        [OP_CLOSE, 7], [OP_SHUTDOWN, 8], [OP_GET_ATTR, 11, "x_threshold"],
        [OP_CALL, 12, "render", [1, np.arange(3)], {"mode": "x"}],
        [OP_SET_ATTR, 13, "gravity", 5.0],
        [0, 1, obs, info], [0, 3, *step], [1, 4, error],
        [0, 9, np.arange(600, dtype=np.float64).reshape(20, 30),
         (np.float32(1.5), 2**80, 1 + 2j, np.bool_(True)),
         GraphInstance(np.zeros((3, 2), np.float32), np.ones(2, np.int64),
                       np.array([[0, 1], [1, 2]])),
         _object_array([None, "a", (1,), np.arange(3)]),
         {"t": msgpack.Timestamp(1, 2), "s": "x" * 40, "b": b"\x00" * 20}],
        [0, 10, np.arange(300, dtype=">i4"), np.zeros((2, 3, 40), np.uint8),
         np.array([1 + 1j] * 70, np.complex128), np.array(["ab", "c"] * 20, "S2")],
    ]
    out = []
    for message in messages:
        header, body = encode(message, Encoder())
        out.append((bytes(header), bytes(body)))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A real message with 1-4 byte-level edits to its header or body."""
    entries = corpus()
    header, body = entries[draw(st.integers(0, len(entries) - 1))]
    parts = [bytearray(header), bytearray(body)]
    for _ in range(draw(st.integers(1, 4))):
        which = parts[draw(st.integers(0, 1)) if body else 0]
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "extend",
                                   "splice"]))
        pos = draw(st.integers(0, 2**16)) % (len(which) + 1)
        if op == "flip" and pos < len(which):
            which[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < len(which):
            which[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xC1, 0xD4, 0xFF, 0x91, 0x20]))
        elif op == "cut":
            del which[pos:]
        elif op == "insert":
            which[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del which[pos : pos + draw(st.integers(1, 8))]
        elif op == "extend":
            which += draw(st.binary(min_size=1, max_size=32))
        elif op == "splice":
            other = entries[draw(st.integers(0, len(entries) - 1))][0]
            which[pos:] = other[pos % (len(other) + 1) :]
    return bytes(parts[0]), bytes(parts[1])


# -- layer 1: the decoder --------------------------------------------------------------------

EXT_MARKERS = [b"\xc7", b"\xc8", b"\xc9", b"\xd4", b"\xd5", b"\xd6", b"\xd7", b"\xd8"]


def test_decoder_random_bytes() -> None:
    name = "test_decoder_random_bytes"

    @_fuzz_settings(name)
    @given(header=st.one_of(
               st.binary(max_size=200),
               st.builds(lambda m, rest: m + rest, st.sampled_from(EXT_MARKERS),
                         st.binary(max_size=120)),
               st.builds(lambda k, rest: bytes([0x90 + k]) + rest, st.integers(0, 15),
                         st.binary(max_size=120))),
           body=st.one_of(st.none(), st.binary(max_size=128)))
    def case(header: bytes, body: bytes | None) -> None:
        check_decoder(name, header, body)

    case()
    assert CASES[name] >= TARGETS[name]


def test_decoder_extension_values() -> None:
    """One extension value per message, so no other part of it masks what it does."""
    name = "test_decoder_extension_values"

    @_fuzz_settings(name)
    @given(value=st.one_of(ext_leaves(GOOD_DTYPES), ext_object_arrays(SCALARS),
                           st.builds(lambda items, code: msgpack.ExtType(code, _pack(items)),
                                     st.lists(SCALARS, max_size=4), st.sampled_from([4, 5]))),
           body=st.one_of(st.none(), st.binary(max_size=4096)))
    def case(value: Any, body: bytes | None) -> None:
        check_decoder(name, _pack([OP_PING, 1, value]), body)

    case()
    assert CASES[name] >= TARGETS[name]


def test_decoder_structured_values() -> None:
    name = "test_decoder_structured_values"

    @_fuzz_settings(name)
    @given(value=structured(GOOD_DTYPES),
           as_request=st.booleans(),
           body=st.one_of(st.none(), st.binary(max_size=4096)),
           cut=st.one_of(st.none(), st.integers(0, 4096)))
    def case(value: Any, as_request: bool, body: bytes | None, cut: int | None) -> None:
        header = _pack([OP_STEP, 1, value] if as_request else value)
        if cut is not None:
            header = header[:cut]
        check_decoder(name, header, body)

    case()
    assert CASES[name] >= TARGETS[name]


def test_decoder_mutated_messages() -> None:
    name = "test_decoder_mutated_messages"

    @_fuzz_settings(name)
    @given(message=mutated())
    def case(message: tuple[bytes, bytes]) -> None:
        check_decoder(name, message[0], message[1] or None)

    for header, body in corpus():  # the unmutated messages decode
        Decoder().decode(header, bytearray(body) if body else None)
    case()
    assert CASES[name] >= TARGETS[name]


def _nest(depth: int, kind: str, leaf: bytes) -> bytes:
    if kind == "list":
        return b"\x91" * depth + leaf
    if kind == "map":
        return b"\x81\xc0" * depth + leaf
    inner = leaf
    per_level = {"tuple": 1, "tuple+lists": 12, "graph": 1}[kind]
    for _ in range(depth // per_level):
        code = 5 if kind == "graph" else 4
        inner = _pack(msgpack.ExtType(code, b"\x91" * per_level + inner))
    return inner


def test_decoder_deep_nesting() -> None:
    name = "test_decoder_deep_nesting"

    @_fuzz_settings(name)
    @given(depth=st.one_of(st.integers(0, 1100), st.sampled_from([62, 63, 64, 65, 1023, 1024,
                                                                  1025])),
           kind=st.sampled_from(["list", "map", "tuple", "tuple+lists", "graph"]),
           leaf=st.sampled_from([b"\xc0", b"\x01", b"\xc1", b"", b"\x92\x01"]))
    def case(depth: int, kind: str, leaf: bytes) -> None:
        check_decoder(name, _nest(depth, kind, leaf), None)

    case()
    assert CASES[name] >= TARGETS[name]


# -- layer 2: a real server ------------------------------------------------------------------


def frame(value: Any) -> bytes:
    """One complete frame carrying ``value``, as rlmesh's client would send it."""
    header, body = encode(value, Encoder())
    return PREFIX.pack(len(header), len(body)) + header + bytes(body)


def raw_frame(header: bytes, body: bytes = b"", flag: bool = False) -> bytes:
    return PREFIX.pack(len(header) | (SHM_FLAG if flag else 0), len(body)) + header + body


class Witness:
    """A session that steps in lockstep with a local CartPole; any difference fails."""

    def __init__(self, remote: RemoteEnv, seed: int) -> None:
        self.remote = remote
        self.local = gym.make("CartPole-v1")
        self.seed = seed
        self.rng = random.Random(seed)
        self.steps = 0
        self._reset()

    def _reset(self) -> None:
        remote_obs, remote_info = self.remote.reset(seed=self.seed)
        local_obs, local_info = self.local.reset(seed=self.seed)
        _same_obs(remote_obs, local_obs)
        assert remote_info == local_info

    def check(self, steps: int = 3) -> None:
        for _ in range(steps):
            action = self.rng.randrange(2)
            remote = self.remote.step(action)
            local = self.local.step(action)
            self.steps += 1
            _same_obs(remote[0], local[0])
            for got, want in zip(remote[1:4], local[1:4], strict=True):
                assert type(got) is type(want) and got == want, (remote[1:4], local[1:4])
            assert remote[4] == local[4]
            if local[2] or local[3]:
                self.seed += 1
                self._reset()

    def close(self) -> None:
        self.remote.close()
        self.local.close()


def _same_obs(got: Any, want: Any) -> None:
    assert isinstance(got, np.ndarray) and got.dtype.str == want.dtype.str
    assert got.shape == want.shape and got.tobytes() == want.tobytes(), (got, want)


class Target:
    """The server under test, its witnesses, and the case count of one network test."""

    def __init__(self, server: ServerProcess, witnesses: list[Witness]) -> None:
        self.server = server
        self.witnesses = witnesses
        host, _, port = server.address.rpartition(":")
        self.sockaddr = (host, int(port))
        self.limit = int(witnesses[0].remote.contract["max_message_bytes"])
        self.name = ""
        self.worst = 0.0

    def tick(self, started: float) -> None:
        """Count one finished case; step the witnesses every WITNESS_EVERY cases."""
        self.worst = max(self.worst, time.monotonic() - started)
        CASES[self.name] += 1
        if CASES[self.name] % WITNESS_EVERY == 0:
            for witness in self.witnesses:
                witness.check()

    def finish(self) -> None:
        """The server survived: alive, probes at once, serves, witnesses unchanged."""
        assert CASES[self.name] >= TARGETS[self.name], "the fuzz run was cut short"
        assert self.worst < IO_TIMEOUT, f"a case took {self.worst:.2f}s"
        for witness in self.witnesses:
            witness.check(steps=20)
            assert witness.steps > 0
        assert self.server.process.poll() is None, "the server process died"
        start = time.monotonic()
        contract = rlmesh.probe(self.server.address, timeout=IO_TIMEOUT)
        assert time.monotonic() - start < 1.0, "the probe was slow"
        assert contract["kind"] == "env"
        with RemoteEnv(self.server.address, connect_timeout=IO_TIMEOUT,
                       timeout=IO_TIMEOUT) as env:
            env.reset(seed=0)
            env.step(0)
        log_dir = getattr(self.server, "_tmpdir", None)
        if log_dir is not None:
            with contextlib.suppress(FileNotFoundError), open(f"{log_dir}/stderr.log") as log:
                text = log.read()
                assert "internal error" not in text, text[text.index("internal error") - 200:]


@pytest.fixture
def target(spawn: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch,
           request: pytest.FixtureRequest) -> Iterator[Target]:
    """A CartPole server in a child process, with a TCP-only and a default witness."""
    server = spawn("CartPole-v1")
    witnesses: list[Witness] = []

    def witness(seed: int) -> RemoteEnv:
        remote = RemoteEnv(server.address, connect_timeout=5, timeout=IO_TIMEOUT)
        try:
            witnesses.append(Witness(remote, seed))
        except BaseException:
            remote.close()
            raise
        return remote

    try:
        with monkeypatch.context() as patch:
            patch.setenv("RLMESH_SAME_HOST", "0")
            tcp_only = witness(seed=1000)
        assert tcp_only.contract["shm"] is False
        default = witness(seed=2000)
        if shm.enabled():
            assert default.contract["shm"] is True, "the default witness should use shm"
        result = Target(server, witnesses)
        result.name = request.node.name
        yield result
    finally:
        for witness in witnesses:
            with contextlib.suppress(Exception):
                witness.close()


class Peer:
    """A raw client socket; every wait is bounded by IO_TIMEOUT."""

    def __init__(self, sockaddr: tuple[str, int]) -> None:
        self.sock = socket.create_connection(sockaddr, timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.decoder = Decoder()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send ``data``; a server that already hung up (after a fatal error) is fine."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def end_writes(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the server neither answered nor hung up within "
                                     f"{IO_TIMEOUT}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the server neither answered nor hung up within "
                                     f"{IO_TIMEOUT}s") from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def reply(self) -> Any:
        """The next reply, decoded; ``None`` when the server hung up."""
        deadline = time.monotonic() + IO_TIMEOUT
        if not self._fill(PREFIX.size, deadline):
            assert not self.buf, f"the server hung up inside a reply prefix: {self.buf!r}"
            return None
        hlen, blen = PREFIX.unpack_from(self.buf)
        assert not hlen & SHM_FLAG, "shared-memory flag on a connection without a region"
        assert hlen + blen <= REPLY_LIMIT, f"reply of {hlen + blen} bytes"
        end = PREFIX.size + hlen + blen
        assert self._fill(end, deadline), "the server hung up in the middle of a reply"
        header = bytes(self.buf[PREFIX.size : PREFIX.size + hlen])
        body = bytearray(self.buf[PREFIX.size + hlen : end])
        del self.buf[:end]
        return self.decoder.decode(header, body or None)


# -- the protocol model ----------------------------------------------------------------------


@dataclass
class Expect:
    """One reply the server owes: the codes it may carry (``"ok"`` for status 0)."""

    codes: frozenset[str]
    rid: bytes | None
    """canon() of the request id it must echo."""
    echo: bytes | None = None
    """canon() of the values an ``ok`` reply must carry (PING)."""
    why: str = ""


def _expect(codes: str | frozenset[str], rid: Any, why: str, echo: bytes | None = None
            ) -> Expect:
    return Expect(frozenset([codes]) if isinstance(codes, str) else codes, canon(rid), echo,
                  why)


def _valid_seed(seed: Any) -> bool:
    return seed is None or type(seed) is int


ATTR_ARITY = {OP_GET_ATTR: 3, OP_CALL: 5, OP_SET_ATTR: 4}
ATTR_ACCESSORS = frozenset({"get_wrapper_attr", "set_wrapper_attr", "has_wrapper_attr"})
ATTR_OWN_OPS = frozenset({"reset", "step", "close"})
ATTR_FIXED = frozenset({"observation_space", "action_space", "single_observation_space",
                        "single_action_space", "num_envs", "metadata", "render_mode", "spec",
                        "render", "env"})


def attribute_codes(msg: list[Any]) -> frozenset[str] | None:
    """What a single-env server may answer to an attribute request (section 13).

    ``None``: the request is malformed (a fatal ``protocol_error``).
    """
    op = msg[0]
    if len(msg) != ATTR_ARITY[op]:
        return None
    if op == OP_CALL and not (type(msg[3]) is list and type(msg[4]) is dict
                              and all(type(key) is str for key in msg[4])):
        return None
    name = msg[2]
    if (type(name) is not str or not name.isidentifier() or name.startswith("_")
            or name in ATTR_ACCESSORS or (name in ATTR_OWN_OPS and op != OP_GET_ATTR)
            or (op == OP_SET_ATTR and name in ATTR_FIXED)):
        return frozenset({"not_allowed"})
    if op == OP_SET_ATTR:
        return frozenset({OK, "env_error"})
    return frozenset({OK, "no_attribute", "env_error", "encode_error"})


HANDSHAKE_BYTES = ServeOptions.max_handshake_bytes
HEADER_BYTES = ServeOptions.max_header_bytes


def predict(data: bytes, handshaken: bool, limit: int) -> tuple[list[Expect], bool]:
    """The replies the server owes for ``data`` and whether it hangs up after them.

    Follows ``docs/protocol.md`` (framing, handshake, ops, session states) for a CartPole
    factory server without token, resumption or shared memory for this peer. A ``False``
    second value means the server is waiting for more bytes.
    """
    out: list[Expect] = []
    decoder = Decoder()
    pos = 0
    while True:
        if len(data) - pos < PREFIX.size:
            return out, False
        hlen, blen = PREFIX.unpack_from(data, pos)
        flagged, hlen = hlen & SHM_FLAG, hlen & ~SHM_FLAG
        # Before the HELLO is accepted (no token), frames are capped at max_handshake_bytes;
        # after it, headers at max_header_bytes (the server's defaults).
        cap = limit if handshaken else min(limit, HANDSHAKE_BYTES)
        if hlen + blen > cap or hlen > (HEADER_BYTES if handshaken else cap):
            out.append(_expect("message_too_large", None, "oversized frame"))
            return out, True
        if flagged:
            out.append(_expect("protocol_error", None, "shm flag without a region"))
            return out, True
        start = pos + PREFIX.size
        if len(data) - start < hlen + blen:
            return out, False
        header, body = data[start : start + hlen], data[start + hlen : start + hlen + blen]
        pos = start + hlen + blen
        try:
            msg = decoder.decode(header, bytearray(body) if body else None)
        except ProtocolError:
            out.append(_expect("protocol_error", None, "undecodable header"))
            return out, True
        if type(msg) is not list or len(msg) < 2 or type(msg[0]) is not int:
            out.append(_expect("protocol_error", None, "not a request array"))
            return out, True
        op, rid = msg[0], msg[1]
        if not handshaken:
            if op != OP_HELLO or len(msg) != 3 or not isinstance(msg[2], dict):
                out.append(_expect("protocol_error", rid, "first request not HELLO"))
                return out, True
            hello = msg[2]
            version = hello.get("rlmesh")
            if type(version) is not int or version != 1:
                out.append(_expect("version_mismatch", rid, "wrong version"))
                return out, True
            if hello.get("probe") is True:
                out.append(_expect(OK, rid, "probe"))
                return out, True
            if hello.get("resume") is not None:  # this server keeps no sessions to resume
                out.append(_expect(frozenset({"resume_failed", "protocol_error"}), rid,
                                   "resume"))
                return out, True
            out.append(_expect(OK, rid, "HELLO"))
            handshaken = True
        elif op == OP_STEP:
            if len(msg) != 3:
                out.append(_expect("protocol_error", rid, "STEP arity"))
                return out, True
            out.append(_expect(frozenset({OK, "invalid_action", "reset_needed", "env_error"}),
                               rid, "STEP"))
        elif op == OP_RESET:
            if len(msg) != 4 or not _valid_seed(msg[2]) or not (
                    msg[3] is None or isinstance(msg[3], dict)):
                out.append(_expect("protocol_error", rid, "RESET arguments"))
                return out, True
            out.append(_expect(frozenset({OK, "env_error"}), rid, "RESET"))
        elif op == OP_RENDER:
            out.append(_expect(frozenset({OK, "env_error"}), rid, "RENDER"))
        elif op == OP_PING:
            echo = canon(msg[2:])
            codes = frozenset({OK}) if echo is not None else frozenset({OK, "encode_error"})
            out.append(_expect(codes, rid, "PING", echo))
        elif op == OP_CLOSE:
            out.append(_expect(OK, rid, "CLOSE"))
            return out, True
        elif op == OP_SHUTDOWN:
            out.append(_expect("not_allowed", rid, "SHUTDOWN"))
        elif op in ATTR_ARITY:
            codes = attribute_codes(msg)
            if codes is None:
                out.append(_expect("protocol_error", rid, "attribute request arguments"))
                return out, True
            out.append(_expect(codes, rid, f"attribute op {op}"))
        else:
            out.append(_expect("protocol_error", rid, "unknown op"))
            return out, True


def check_reply(reply: Any, expect: Expect) -> bool:
    """``reply`` is well formed and what ``expect`` allows; returns whether it is fatal."""
    assert type(reply) is list and len(reply) >= 2, f"malformed reply {reply!r:.200}"
    fatal = False
    if reply[0] == 0:
        code = OK
    else:
        assert reply[0] == 1 and len(reply) == 3 and isinstance(reply[2], dict), reply
        error = reply[2]
        assert {"code", "message", "type", "traceback", "fatal"} <= set(error), error
        code, fatal = error["code"], error["fatal"]
        assert type(fatal) is bool and fatal == (code in FATAL_CODES), error
        assert code in FATAL_CODES | NONFATAL_CODES, error
    assert code in expect.codes, (
        f"{expect.why}: expected {sorted(expect.codes)}, got {code!r}: {reply!r:.300}")
    assert canon(reply[1]) == expect.rid, f"{expect.why}: request id not echoed"
    if code == OK and expect.echo is not None:
        assert canon(reply[2:]) == expect.echo, f"PING echo differs: {reply!r:.300}"
    return fatal


def run_fresh(target: Target, data: bytes) -> None:
    """One case on a fresh connection: send, stop writing, read exactly the owed replies."""
    started = time.monotonic()
    expects, _ = predict(data, handshaken=False, limit=target.limit)
    with Peer(target.sockaddr) as peer:
        peer.send(data)
        peer.end_writes()  # a server waiting for more bytes sees EOF now
        for i, expect in enumerate(expects):
            reply = peer.reply()
            assert reply is not None, f"hung up before reply {i} ({expect.why})"
            check_reply(reply, expect)
        extra = peer.reply()
        assert extra is None, f"unexpected reply after {len(expects)}: {extra!r:.300}"
    target.tick(started)


# -- strategies: what goes on the wire -------------------------------------------------------

RIDS = st.one_of(st.integers(0, 2**64 - 1),
                 st.sampled_from([None, -1, "x", 1.5, [1], {"a": 1}, (1, 2), b""]))
# Values for requests. Depth is bounded and unicode arrays excluded: deeply nested or
# invalid-code-point actions end the session (see test_session_answers_hostile_values).
SAFE_VALUES = st.one_of(RICH, structured([d.encode() for d in SERVER_DTYPES], max_leaves=4))
ACTIONS = st.one_of(st.sampled_from([0, 1, True, False, 2, -1, np.int64(1), np.uint8(0),
                                     np.int32(2), np.float64(1.0), np.bool_(True), 2**70,
                                     np.array(1), np.array([0, 1])]), RICH)
SEEDS = st.one_of(st.none(), st.integers(0, 2**32 - 1), st.integers(-(2**63), 2**64 - 1),
                  st.integers(2**64, 2**200), st.sampled_from([-1, True, 1.0, "1", [1],
                                                               np.int64(3), b"\x01"]))
OPTIONS = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"low": st.floats() | st.text(max_size=3) | RICH,
                                        "high": st.floats() | st.integers()}),
    st.dictionaries(KEYS, RICH, max_size=3),
    st.sampled_from([[], 0, "x", (None,)]),
)
HELLO_MAPS = st.fixed_dictionaries(
    {"rlmesh": st.one_of(st.just(1), st.sampled_from([0, 2, True, 1.0, -1, 2**64 - 1, None,
                                                      "1", b"\x01", [1], {}]))},
    optional={
        "client": st.text(max_size=20),
        "capabilities": st.one_of(st.lists(st.sampled_from(["shm", "shm-link", "x", ""]),
                                           max_size=3), st.integers(), st.none()),
        "probe": st.sampled_from([True, False, 1, None, "yes"]),
        "shm": st.one_of(st.fixed_dictionaries({
            "host": st.one_of(st.text(max_size=8), st.just(shm.host_id()))}, optional={
            # (an older client named a region of its own: the server must ignore names)
            "name": st.one_of(st.text(max_size=20), st.sampled_from(
                ["rlmesh-0-0", "rlmesh-../../x", "../rlmesh-x", "rlmesh-" + "a" * 80])),
            "size": st.one_of(st.integers(-1, 2**31), st.sampled_from([0, 4096, 2**30 + 1])),
            # (never this process's own namespace: a valid offer starts the REGION exchange,
            # which tests/faults/test_shared_memory.py drives case by case)
            "pidns": st.one_of(st.integers().filter(lambda n: n != shm.pid_namespace()),
                               st.text(max_size=4))}),
            st.integers(), st.text(max_size=4)),
        "nonce": st.binary(max_size=20),
        "zzz": SCALARS,
    },
)
ATTR_NAMES = st.one_of(
    st.sampled_from(["x_threshold", "gravity", "np_random", "unwrapped", "metadata", "spec",
                     "render", "render_mode", "class_name", "has_reset", "reset", "step",
                     "close", "observation_space", "num_envs", "env", "get_wrapper_attr",
                     "set_wrapper_attr", "has_wrapper_attr", "_np_random", "__class__",
                     "__dict__", "_max_episode_steps", "nope", "fuzz_note", "", "1x", "a b",
                     "é", "x" * 5000, "\x00"]),
    st.text(max_size=12),
    SCALARS,
    st.lists(SCALARS, max_size=2),
)
CALL_ARGS = st.one_of(st.lists(SAFE_VALUES, max_size=3), SCALARS,
                      st.lists(SCALARS, max_size=2).map(tuple))
CALL_KWARGS = st.one_of(st.dictionaries(st.text(max_size=6), SAFE_VALUES, max_size=2),
                        st.dictionaries(KEYS, SCALARS, max_size=2), SCALARS)
ATTR_REQUESTS = st.one_of(
    st.builds(lambda rid, name: [OP_GET_ATTR, rid, name], RIDS, ATTR_NAMES),
    st.builds(lambda rid, name, args, kwargs: [OP_CALL, rid, name, args, kwargs], RIDS,
              ATTR_NAMES, CALL_ARGS, CALL_KWARGS),
    st.builds(lambda rid, name, value: [OP_SET_ATTR, rid, name, value], RIDS, ATTR_NAMES,
              SAFE_VALUES),
    st.builds(lambda op, rid, args: [op, rid, *args],
              st.sampled_from([OP_GET_ATTR, OP_CALL, OP_SET_ATTR]), RIDS,
              st.lists(ATTR_NAMES, max_size=5)),  # arity
)
REQUESTS = st.one_of(
    st.builds(lambda rid, a: [OP_STEP, rid, a], RIDS, ACTIONS),
    st.builds(lambda rid, s, o: [OP_RESET, rid, s, o], RIDS, SEEDS, OPTIONS),
    st.builds(lambda rid, args: [OP_PING, rid, *args], RIDS, st.lists(SAFE_VALUES, max_size=3)),
    st.builds(lambda rid: [OP_RENDER, rid], RIDS),
    st.builds(lambda rid: [OP_CLOSE, rid], RIDS),
    st.builds(lambda rid, args: [OP_SHUTDOWN, rid, *args], RIDS, st.lists(SCALARS, max_size=2)),
    st.builds(lambda rid, h: [OP_HELLO, rid, h], RIDS, HELLO_MAPS),
    st.builds(lambda rid, v: [OP_REGION, rid, v], RIDS,
              st.one_of(st.fixed_dictionaries({"attached": SCALARS}), SCALARS)),
    ATTR_REQUESTS,
    st.builds(lambda op, rid, args: [op, rid, *args], st.sampled_from([OP_STEP, OP_RESET]),
              RIDS, st.lists(st.sampled_from([0, None, {}]), max_size=3)),  # arity
    st.builds(lambda op, rid, args: [op, rid, *args],
              st.one_of(st.integers(-3, 14), st.integers(-(2**63), 2**64 - 1)), RIDS,
              st.lists(SCALARS, max_size=4)),
    st.lists(SCALARS, max_size=2),  # too short, or the op is not an int
    SCALARS,  # not an array at all
)
UNDER_LIMIT = st.one_of(st.integers(0, 64), st.integers(0, 4096), st.integers(0, 2**20))


@st.composite
def oversized(draw: st.DrawFn, limit: int) -> bytes:
    hlen = draw(st.one_of(st.integers(0, 4096), st.integers(0, 2**31 - 1)))
    blen = draw(st.integers(max(0, limit + 1 - hlen), 2**32 - 1))
    flag = SHM_FLAG if draw(st.booleans()) else 0
    return PREFIX.pack(hlen | flag, blen) + draw(st.binary(max_size=16))


@st.composite
def edited(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1-3 bytes changed (the prefix included)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, 2**16)) % len(out)
        out[pos] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def chunks(limit: int) -> st.SearchStrategy[bytes]:
    """One piece of what a hostile client sends: frames, parts of frames, noise."""
    frames = REQUESTS.map(frame)
    return st.one_of(
        frames,
        frames,
        frames.flatmap(lambda data: edited(data)),
        st.builds(lambda data, cut: data[: cut % len(data)], frames, st.integers(0, 2**16)),
        st.binary(min_size=1, max_size=300),
        st.builds(raw_frame, st.binary(max_size=64), st.binary(max_size=64)),
        st.builds(lambda value: raw_frame(_pack([OP_STEP, 7, value])),
                  structured([d.encode() for d in SERVER_DTYPES], max_leaves=4)),
        st.builds(lambda h, b, rest: PREFIX.pack(h, b) + rest, UNDER_LIMIT, UNDER_LIMIT,
                  st.binary(max_size=64)),
        oversized(limit),
        st.builds(lambda value: raw_frame(encode(value)[0], flag=True), REQUESTS),
    )


# -- layer 2 tests ---------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_server_fresh_connections(target: Target) -> None:
    """Garbage from the first byte on: one case per connection, each closed promptly."""
    limit = target.limit
    # Boundaries of the frame limit, once each (a frame of exactly the limit is accepted).
    for data in (PREFIX.pack(limit, 0), PREFIX.pack(0, limit), PREFIX.pack(limit - 8, 8),
                 PREFIX.pack(limit + 1, 0), PREFIX.pack(0, limit + 1),
                 PREFIX.pack(2**31 - 1, 2**32 - 1), PREFIX.pack(0xFFFFFFFF, 0xFFFFFFFF),
                 PREFIX.pack(SHM_FLAG, 0), PREFIX.pack(SHM_FLAG | 3, 0) + b"\x93\x00\x00",
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 8, b"\x00" * 7, b""):
        run_fresh(target, data)

    @_fuzz_settings(target.name)
    @given(pieces=st.lists(chunks(limit), min_size=1, max_size=3))
    def case(pieces: list[bytes]) -> None:
        run_fresh(target, b"".join(pieces))

    case()
    target.finish()


@pytest.mark.timeout(90)
def test_server_after_handshake(target: Target) -> None:
    """A valid HELLO (and maybe a RESET), then garbage: replies as owed, then the close."""
    hello = {"rlmesh": 1, "client": "fuzz", "capabilities": []}

    @_fuzz_settings(target.name)
    @given(reset=st.sampled_from([None, 0, 7]),
           pieces=st.lists(chunks(target.limit), min_size=1, max_size=3))
    def case(reset: int | None, pieces: list[bytes]) -> None:
        start = frame([OP_HELLO, 0, hello])
        if reset is not None:
            start += frame([OP_RESET, 1, reset, None])
        run_fresh(target, start + b"".join(pieces))

    case()
    target.finish()


# Requests a long-lived session survives: no fatal errors among them by construction.
KEPT_REQUESTS = st.one_of(
    st.builds(lambda rid, a: [OP_STEP, rid, a], RIDS, ACTIONS),
    st.builds(lambda rid, a: [OP_STEP, rid, a], RIDS, st.sampled_from([0, 1])),
    st.builds(lambda rid, args: [OP_PING, rid, *args], RIDS, st.lists(RICH, max_size=3)),
    st.builds(lambda rid, s, o: [OP_RESET, rid, s, o], RIDS,
              st.one_of(st.none(), st.integers(0, 2**32 - 1), st.integers(-(2**63), 2**200)),
              OPTIONS.filter(lambda o: o is None or isinstance(o, dict))),
    st.builds(lambda rid: [OP_RENDER, rid], RIDS),
    st.builds(lambda rid, args: [OP_SHUTDOWN, rid, *args], RIDS, st.lists(SCALARS, max_size=2)),
    # Attribute requests, well formed: reads and calls of anything (nothing CartPole offers
    # changes its dynamics), but sets only of names that leave the episode alone.
    st.builds(lambda rid, name: [OP_GET_ATTR, rid, name], RIDS, ATTR_NAMES),
    st.builds(lambda rid, name, args, kwargs: [OP_CALL, rid, name, args, kwargs], RIDS,
              ATTR_NAMES, st.lists(RICH, max_size=2),
              st.dictionaries(st.text(max_size=6), RICH, max_size=2)),
    st.builds(lambda rid, name, value: [OP_SET_ATTR, rid, name, value], RIDS,
              st.sampled_from(["fuzz_note", "observation_space", "step", "_np_random",
                               "__class__", "set_wrapper_attr", "a b", "", "spec"]), RICH),
)
ACTION_SPACE = Discrete(2)


def _is_action(action: Any) -> bool:
    try:
        return bool(ACTION_SPACE.contains(action))
    except Exception:
        return False


@pytest.mark.timeout(90)
def test_server_long_lived_session(target: Target) -> None:
    """Many non-fatal requests, some pipelined, on one session; every answer is exact."""
    holder: dict[str, Peer] = {}
    local = gym.make("CartPole-v1")

    def session() -> Peer:
        if "peer" not in holder:
            peer = Peer(target.sockaddr)
            peer.send(frame([OP_HELLO, 0, {"rlmesh": 1, "client": "fuzz"}]) +
                      frame([OP_RESET, 1, 0, None]))
            assert peer.reply()[0] == 0 and peer.reply()[0] == 0
            holder["peer"] = peer
        return holder["peer"]

    @_fuzz_settings(target.name)
    @given(batch=st.lists(KEPT_REQUESTS, min_size=1, max_size=4))
    def case(batch: list[list[Any]]) -> None:
        started = time.monotonic()
        data = b"".join(frame(request) for request in batch)
        expects, ends = predict(data, handshaken=True, limit=target.limit)
        assert not ends and len(expects) == len(batch)
        peer = session()
        peer.send(data)
        for request, expect in zip(batch, expects, strict=True):
            seen = Decoder().decode(*_split(frame(request)))  # the request as the server sees it
            if request[0] == OP_STEP:
                expect.codes = frozenset({OK if _is_action(seen[2]) else "invalid_action"})
            reply = peer.reply()
            assert reply is not None, f"the server ended a session after {expect.why}"
            assert not check_reply(reply, expect)
            if request[0] == OP_STEP and reply[0] == 0:
                assert len(reply) == 7 and reply[2].shape == (4,) and type(reply[3]) is float
            if request[0] == OP_RESET and reply[0] == 0 and request[3] is None and (
                    type(request[2]) is int and 0 <= request[2] < 2**32):
                _same_obs(reply[2], local.reset(seed=request[2])[0])
        target.tick(started)

    try:
        case()
    finally:
        local.close()
        if "peer" in holder:
            holder["peer"].sock.close()
    target.finish()


def _split(data: bytes) -> tuple[bytes, bytearray | None]:
    hlen, blen = PREFIX.unpack_from(data)
    body = bytearray(data[PREFIX.size + hlen :])
    return data[PREFIX.size : PREFIX.size + hlen], body if blen else None


# -- regressions: bugs this suite found ------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("code", "count"), [(b"|S0", 2**30), (b"<U0", 2**28)],
                         ids=["S0", "U0"])
def test_decoder_refuses_zero_itemsize_blowup(code: bytes, count: int) -> None:
    meta = bytes([len(code)]) + code + b"\x01" + struct.pack("<q", count)
    header = _pack([OP_PING, 1, msgpack.ExtType(1, meta)])
    try:
        value = Decoder().decode(header, None)
    except ProtocolError as exc:
        assert not _caused_by(exc, MemoryError), f"tried a huge allocation: {exc}"
        return
    check_footprint(value, len(header))


_BAD_UNICODE = msgpack.ExtType(1, b"\x03<U1\x01" + struct.pack("<qI", 1, 0x110000))
_HOSTILE: dict[str, tuple[bytes, str]] = {
    # name: (header sent after HELLO + RESET, or instead of HELLO; code the spec asks for)
    "step-1000-deep-action": (b"\x93\x02\x05" + b"\x91" * 1000 + b"\xc0", "invalid_action"),
    "step-invalid-code-point": (_pack([OP_STEP, 5, _BAD_UNICODE]), "protocol_error"),
    "hello-1000-deep-version": (b"\x93\x00\x00\x81\xa6rlmesh" + b"\x91" * 1000 + b"\x01",
                                "version_mismatch"),
    "hello-array-version": (encode([OP_HELLO, 0, {"rlmesh": np.array([1, 1])}])[0],
                            "version_mismatch"),
    "hello-array-shm-host": (encode([OP_HELLO, 0, {"rlmesh": 1, "shm": {
        "name": "rlmesh-x", "size": 4096, "host": np.array(["a", "b"])}}])[0], OK),
    "hello-array-shm-pidns": (encode([OP_HELLO, 0, {"rlmesh": 1, "shm": {
        "host": shm.host_id(), "pidns": np.array([1, 2])}}])[0], OK),
}
_NEEDS_SHM = pytest.mark.skipif(not shm.enabled(), reason="the server looks at shm offers only "
                                "with the same-host path enabled")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", [pytest.param(name, marks=[_NEEDS_SHM] if "shm" in name else [])
                                  for name in _HOSTILE])
def test_session_answers_hostile_values(spawn: Callable[..., ServerProcess], name: str) -> None:
    header, code = _HOSTILE[name]
    server = spawn("CartPole-v1")
    host, _, port = server.address.rpartition(":")
    with Peer((host, int(port))) as peer:
        if name.startswith("step"):
            peer.send(frame([OP_HELLO, 0, {"rlmesh": 1}]) + frame([OP_RESET, 1, 0, None]))
            assert peer.reply()[0] == 0 and peer.reply()[0] == 0
        peer.send(raw_frame(header))
        reply = peer.reply()
        assert server.process.poll() is None and rlmesh.probe(server.address)["kind"] == "env"
        assert reply is not None, "the server hung up without a reply"
        assert (OK if reply[0] == 0 else reply[2]["code"]) == code, reply
        if code == OK or code == "invalid_action":  # the session goes on
            peer.send(frame([OP_PING, 9, "still there"]))
            assert peer.reply() == [0, 9, "still there"]


@pytest.mark.timeout(30)
def test_ping_echo_is_not_amplified(spawn: Callable[..., ServerProcess]) -> None:
    server = spawn("CartPole-v1")
    host, _, port = server.address.rpartition(":")
    meta = b"\x03|S0\x01" + struct.pack("<q", 2**24)
    with Peer((host, int(port))) as peer:
        peer.send(frame([OP_HELLO, 0, {"rlmesh": 1}]))
        assert peer.reply()[0] == 0
        request = raw_frame(_pack([OP_PING, 1, msgpack.ExtType(1, meta)]))
        peer.send(request)
        deadline = time.monotonic() + IO_TIMEOUT
        assert peer._fill(PREFIX.size, deadline), "no reply"
        hlen, blen = PREFIX.unpack_from(peer.buf)
        assert hlen + blen <= 64 * len(request), f"a {len(request)}-byte request got a " \
            f"{hlen + blen}-byte reply"
