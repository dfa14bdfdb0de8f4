"""Finished sessions give their memory back at once, not at the next full garbage collection.

Security review D6: a session's Encoder and its msgpack Packer referred to each other (the
Packer's ``default`` was a bound method of the Encoder), and the Decoder held a bound method
of itself. Those cycles were freed only by the cyclic collector, and the Packer's buffer stays
at the size of the largest header it packed, so every finished session that once sent a large
reply left that much memory behind in a quiet server.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from rlmesh import EnvServer
from rlmesh.numpy import RemoteEnv
from rlmesh.testing import ServerProcess
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)"),
    pytest.mark.timeout(60),
]

PING_BYTES = 40_000_000
"""Above glibc's largest mmap threshold (32 MiB), so a freed buffer leaves the RSS at once."""


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def echo_large_ping(address: str, size: int) -> None:
    """One session: a PING of ``size`` bytes, echoed in the server's reply header; closed."""
    with RemoteEnv(address, connect_timeout=10, timeout=20) as env:
        assert len(env.ping(b"x" * size)) == size


def settle(measure: Callable[[], float], below: float, within: float) -> float:
    """Poll ``measure`` until it is below ``below`` or ``within`` seconds passed; the last."""
    deadline = time.monotonic() + within
    value = measure()
    while value >= below and time.monotonic() < deadline:
        time.sleep(0.05)
        value = measure()
    return value


def test_finished_large_sessions_do_not_grow_server_rss(
        spawn: Callable[..., ServerProcess]) -> None:
    # (a 40 MB header: above the default header cap, which is not what this test is about)
    server = spawn("CartPole-v1", extra_args=["--max-header-bytes", str(2 * PING_BYTES)])
    echo_large_ping(server.address, 1000)  # warm up: imports, first session, caches
    baseline = rss_mib(server.pid)
    sessions = 4
    for _ in range(sessions):
        echo_large_ping(server.address, PING_BYTES)
    ping_mib = PING_BYTES / 2**20
    grown = settle(lambda: rss_mib(server.pid) - baseline, below=1.5 * ping_mib, within=5.0)
    # Leaking, each session keeps at least its Packer's 40 MB buffer (160+ MB in all).
    assert grown < 1.5 * ping_mib, (
        f"server RSS grew by {grown:.0f} MiB after {sessions} closed sessions of one "
        f"{ping_mib:.0f} MiB ping each")


def test_codecs_keep_no_reference_to_the_last_message() -> None:
    """A Decoder drops the last body once decoded; an Encoder, the last reply's arrays."""
    encoder, decoder = Encoder(), Decoder()
    array = np.ones(1 << 20, np.uint8)
    before = sys.getrefcount(array)
    header, buffers, body_len = encoder.encode([0, 1, array])
    del buffers
    assert sys.getrefcount(array) == before
    body = bytearray(body_len)
    before = sys.getrefcount(body)
    value = decoder.decode(header, body)
    assert value[2].base is not None and sys.getrefcount(body) == before + 1  # the view's
    del value
    assert sys.getrefcount(body) == before


def test_an_encoder_gives_back_a_large_header_buffer() -> None:
    """After a large header, a live Encoder's Packer does not keep a buffer of its size."""
    encoder = Encoder()
    encoder.encode([1, 2, b"small"])
    baseline = rss_mib(os.getpid())
    header, _, _ = encoder.encode([5, 1, b"x" * PING_BYTES])
    assert len(header) > PING_BYTES
    del header
    grown = rss_mib(os.getpid()) - baseline
    assert grown < 0.5 * PING_BYTES / 2**20, f"{grown:.0f} MiB kept by an idle Encoder"
    assert encoder.encode([1, 2, b"small"])[0] == Encoder().encode([1, 2, b"small"])[0]


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Turn the cyclic collector off for the test: only reference counting frees."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def live_codecs() -> int:
    """Encoders and Decoders alive in this process."""
    return sum(1 for obj in gc.get_objects() if type(obj) in (Encoder, Decoder))


def test_closed_sessions_free_their_codecs_without_a_collection(
        serve: Callable[..., EnvServer], no_gc: None) -> None:
    server = serve("CartPole-v1")
    baseline = live_codecs()
    for _ in range(3):
        echo_large_ping(server.address, 300_000)
    left = settle(lambda: live_codecs() - baseline, below=1, within=5.0)
    assert left == 0, f"{left} Encoders/Decoders of closed sessions still alive"
