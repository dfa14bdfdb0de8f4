"""benchmarks/bench_slots.py: both arms make the same exchanges, and the run reports them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import bench_slots
from rlmesh.transport import shmlink
from tests.support.fastslots import require_compiled
from tests.support.values import assert_same_values

pytestmark = pytest.mark.skipif(not shmlink.supported(), reason="the link needs x86-64")


@pytest.mark.parametrize("arm", ["python", "compiled"])
@pytest.mark.parametrize("layout", ["cartpole", "sync_vector_8"])
def test_each_arm_exchanges_the_layout_s_values(arm: str, layout: str) -> None:
    require_compiled()
    layouts = bench_slots._layouts()
    try:
        pair, action, results = layouts[layout]
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
    finally:
        for other, _, _ in layouts.values():
            other.close()


def test_a_short_run_reports_both_layouts(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    require_compiled()
    out = tmp_path / "slots.json"
    assert bench_slots.main(["--rounds", "2", "--seconds", "0.02", "--no-end-to-end",
                             "--json", str(out)]) == 0
    report: dict[str, Any] = json.loads(out.read_text())
    assert set(report["layouts"]) == {"cartpole", "sync_vector_8"}
    for row in report["layouts"].values():
        assert row["python"] > 0 and row["compiled"] > 0 and row["ratio"] > 0
        assert len(row["trials_ns"]["python"]) == len(row["trials_ns"]["compiled"]) == 2
    assert "| cartpole |" in capsys.readouterr().out
