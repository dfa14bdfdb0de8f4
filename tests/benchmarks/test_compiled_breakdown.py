"""``benchmarks/compiled_breakdown.py``: its timing proxy, its pieces, and a short real run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from benchmarks import compiled_breakdown as cb
from rlmesh.transport import shmlink
from tests.support.fastslots import require_compiled


def test_the_proxy_times_its_named_calls_and_forwards_the_rest() -> None:
    class Fast:
        spun_from = 7

        def serve(self, env: Any, check: Any, bounds: Any) -> int:
            return 1

        def put(self, *args: Any) -> int:
            return len(args)

    calls: list[tuple[str, int, int, Any]] = []
    timed = cb.Timed(Fast(), lambda *call: calls.append(call), ("serve", "put"))
    assert timed.serve(None, None, None) == 1
    assert timed.put(1, 2, 3) == 3
    assert timed.spun_from == 7  # (not timed: forwarded)
    assert [(name, result) for name, _, _, result in calls] == [("serve", 1), ("put", 3)]
    assert all(0 <= end - start < 10**9 for _, start, end, _ in calls)


def records(i: int, whole: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """A made-up step ``i``: the client's and the server's record on one clock (ns)."""
    t = 1_000_000 * i
    client = {"total": 30_000 + i, "fast": 27_000 + i, "fast_t0": t + 1_000,
              "fast_t1": t + 28_000 + i, "handed_on": 0}
    server = {"whole": whole, "env_step": 5_000 + 2 * i, "env_step_t0": t + 7_000,
              "env_step_t1": t + 12_000 + 2 * i, "loop": 900 + i}
    return client, server


def test_each_piece_is_the_median_over_the_whole_steps() -> None:
    pairs = [records(i) for i in range(9)]
    odd = [records(100), records(101, whole=False)]
    odd[0][0]["handed_on"] = 1  # (the client's call handed this one to the Python path)
    everything = pairs + odd
    run = {"kind": "tcp", "client": [c for c, _ in everything],
           "server": [s for _, s in everything]}
    out, left_out = cb.breakdown(run)
    assert left_out == 2

    def median_us(values: list[float]) -> float:
        return statistics.median(values) / 1000

    assert out["client: RemoteEnv.step, whole call"] == median_us([c["total"] for c, _ in pairs])
    assert out["client: other client Python"] == median_us(
        [c["total"] - c["fast"] for c, _ in pairs])
    assert out["crossing: request: client call starts -> env.step starts (server: read, "
               "check)"] == median_us([s["env_step_t0"] - c["fast_t0"] for c, s in pairs])
    assert out["server: env.step"] == median_us([s["env_step"] for _, s in pairs])
    assert out["crossing: reply: env.step returns -> client call returns (server: write or "
               "send)"] == median_us([c["fast_t1"] - s["env_step_t1"] for c, s in pairs])
    assert out["server: session loop between two serve calls (off the step's path)"] == \
        median_us([s["loop"] for _, s in pairs])


def test_in_process_has_no_remote_pieces_and_a_mismatch_is_refused() -> None:
    client = [{"total": 5_000, "env_step": 4_000 + i} for i in range(5)]
    out, left_out = cb.breakdown({"kind": "inprocess", "client": client, "server": []})
    assert left_out == 0
    assert out["client: other client Python"] is None
    assert out["server: session loop between two serve calls (off the step's path)"] is None
    assert out["server: env.step"] == statistics.median(c["env_step"] for c in client) / 1000
    c, s = records(0)
    with pytest.raises(RuntimeError, match="1 client steps, 2 server"):
        cb.breakdown({"kind": "link", "client": [c], "server": [s, s]})


@pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine")
@pytest.mark.timeout(180)
def test_a_short_run_times_every_piece_of_both_compiled_paths(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    require_compiled()
    out = tmp_path / "b.json"
    assert cb.main(["--steps", "300", "--json", str(out)]) == 0
    assert "the compiled paths" in capsys.readouterr().out
    result = json.loads(out.read_text())
    for kind in ("link", "tcp"):
        pieces = result["breakdown"][kind]
        assert result["handed_on"].get(kind, 0) < 150  # (most steps whole: the medians stand)
        for label, value in pieces.items():
            assert (value is not None and value > 0) or label.startswith("crossing"), label
        assert result["uninstrumented_us"][kind] > 0
