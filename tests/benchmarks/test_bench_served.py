"""benchmarks/bench_served.py: a short run steps a served env on both transports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_served

pytestmark = pytest.mark.timeout(120)


def test_a_short_run_reports_both_transports(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "served.json"
    assert bench_served.main(["Pendulum-v1", "--rounds", "2", "--seconds", "0.05",
                              "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["env_id"] == "Pendulum-v1" and report["rounds"] == 2
    for name in ("tcp", "link"):
        row = report["transports"][name]
        assert row["shm_link"] is (name == "link")
        assert len(row["trials_us"]["served"]) == len(row["trials_us"]["local"]) == 2
        assert row["served_us"] > 0 and row["local_us"] > 0
        assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
    printed = capsys.readouterr().out
    assert "| tcp |" in printed and "| link |" in printed


def test_a_served_vector_env_runs_against_the_same_in_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "served.json"
    assert bench_served.main(["CartPole-v1", "--num-envs", "3", "--rounds", "1",
                              "--seconds", "0.05", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["num_envs"] == 3
    assert report["transports"]["link"]["shm_link"] is True
    assert "SyncVectorEnv(3) of CartPole-v1 served" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [["--rounds", "0"], ["--num-envs", "-1"]])
def test_bad_settings_are_refused(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench_served.main(["CartPole-v1", *bad])
