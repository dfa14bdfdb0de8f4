"""``benchmarks/ab_servers.py``: its report, its refusals, and a short real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import ab_servers as ab
from rlmesh.transport import shmlink


def test_the_report_gives_each_tree_s_median_of_blocks_and_the_change() -> None:
    table = ab.report({"one_link": {"base": [8.0, 7.0, 9.0], "head": [6.0, 7.0, 5.0]}})
    lines = table.splitlines()
    assert lines[0].startswith("| kind | base µs/step") and "| change |" in lines[0]
    assert lines[2] == "| one_link | 8.00 (7.00-9.00) | 6.00 (5.00-7.00) | -25.0% |"


def test_unknown_kinds_and_a_folder_without_rlmesh_are_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    with pytest.raises(SystemExit):
        ab.main(["--base", ab.HERE, "--kinds", "one_link,sideways"])
    assert "unknown kinds ['sideways']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ab.main(["--base", str(tmp_path)])
    assert "no rlmesh package" in capsys.readouterr().err


@pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine")
@pytest.mark.timeout(180)
def test_a_short_run_steps_servers_of_both_trees(capsys: pytest.CaptureFixture[str]) -> None:
    # (this tree against itself: what runs is the same, each side's servers of its own)
    assert ab.main(["--base", ab.HERE, "--kinds", "one_link,vec_tcp", "--blocks", "2",
                    "--steps", "50"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| one_link")
            or line.startswith("| vec_tcp")]
    assert len(rows) == 2
    for row in rows:
        cells = row.strip("|").split("|")
        assert all(float(cell.split()[0]) > 0 for cell in cells[1:3]), row
