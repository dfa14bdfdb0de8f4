"""benchmarks/bench_compiled.py: both arms make the same exchanges, and the run reports them."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import bench_compiled
from rlmesh.transport import fastframes, shmlink
from tests.support.fastslots import require_compiled
from tests.support.values import assert_same_values

pytestmark = pytest.mark.skipif(not shmlink.supported(), reason="the link needs x86-64")


@contextlib.contextmanager
def pair_of(name: str) -> Iterator[tuple[Any, Any, tuple[Any, ...]]]:
    """The benchmark's pair, action and results of layout ``name``; every pair closed after."""
    layouts = bench_compiled._layouts()
    try:
        yield layouts[name]
    finally:
        for other, _, _ in layouts.values():
            other.close()


def unread(conn: Any) -> int:
    """Bytes the connection holds unread, in its buffer and its socket."""
    try:
        waiting = len(conn.sock.recv(1 << 16, socket.MSG_DONTWAIT | socket.MSG_PEEK))
    except BlockingIOError:
        waiting = 0
    return int(conn._end - conn._start) + waiting


@pytest.mark.parametrize("arm", ["python", "compiled"])
@pytest.mark.parametrize("layout", ["cartpole", "sync_vector_8"])
def test_each_arm_exchanges_the_layout_s_values_over_the_link(arm: str, layout: str) -> None:
    require_compiled()
    with pair_of(f"link {layout}") as (pair, action, results):
        assert isinstance(pair, bench_compiled.Pair)
        exchange = getattr(pair, arm)(action, results)
        for rid in range(5):
            exchange(rid)
        # Five whole exchanges: each side announced five slots and read five.
        for link in (pair.client, pair.server):
            assert link._out_seq == link._in_seq == 5
        # The last reply and request in the slots are the arm's values.
        assert_same_values(pair.mine.read_reply(4), [0, 4, *results], "reply")
        rid, sent = pair.theirs.read_step()
        assert rid == 4 and np.array_equal(sent, action)


@pytest.mark.parametrize("arm", ["python", "compiled"])
@pytest.mark.parametrize("layout", ["cartpole", "sync_vector_8"])
def test_each_arm_exchanges_whole_frames_over_tcp(arm: str, layout: str) -> None:
    require_compiled(fastframes)
    with pair_of(f"tcp {layout}") as (pair, action, results):
        assert isinstance(pair, bench_compiled.FramePair)
        exchange = getattr(pair, arm)(action, results)
        for rid in range(5):
            exchange(rid)
        # Five whole exchanges: every frame sent was read, nothing is left over.
        assert unread(pair.client) == unread(pair.server) == 0
        # And the stream is in step after them: an exchange carries the values both ways.
        assert pair.fast_client is not None and pair.fast_server is not None
        assert pair.fast_server.put(5, *results) == fastframes.DONE
        assert_same_values(pair.fast_client.step(5, action), [0, 5, *results], "reply")
        rid, sent = pair.fast_server.take()  # type: ignore[misc]
        assert rid == 5 and np.array_equal(sent, action)


def test_a_short_run_reports_every_layout(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    require_compiled()
    require_compiled(fastframes)
    out = tmp_path / "compiled.json"
    assert bench_compiled.main(["--rounds", "2", "--seconds", "0.02", "--no-end-to-end",
                                "--json", str(out)]) == 0
    report: dict[str, Any] = json.loads(out.read_text())
    assert set(report["layouts"]) == {f"{transport} {layout}" for transport in ("link", "tcp")
                                      for layout in ("cartpole", "sync_vector_8")}
    for row in report["layouts"].values():
        assert row["python"] > 0 and row["compiled"] > 0 and row["ratio"] > 0
        assert len(row["trials_ns"]["python"]) == len(row["trials_ns"]["compiled"]) == 2
    assert "| tcp cartpole |" in capsys.readouterr().out
