"""``tools/charts.py`` draws the site's benchmark charts from ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.deps import need

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_charts_are_drawn_from_the_results_tables(tmp_path: Path) -> None:
    need("matplotlib")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "charts.py"), "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("bench-core.png", "bench-vector.png", "bench-verdicts.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
        assert f"images/{name}" in (ROOT / "docs" / "performance.md").read_text()
        assert (ROOT / "docs" / "images" / name).read_bytes().startswith(PNG)


def test_a_results_file_without_the_tables_is_refused(tmp_path: Path) -> None:
    need("matplotlib")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n### two cores (split)\n\nno table here\n")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "charts.py"), "--results",
                          str(results), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no table after" in out.stderr


def _verdict_payload() -> dict[str, Any]:
    from benchmarks import bench_core as core

    rounds = [[{"num": core.Trial(r, ops=100 + 10 * r, seconds=1.0, client_cpu=0.5),
                "den": core.Trial(r, ops=100, seconds=1.0, client_cpu=0.5)}] for r in range(7)]
    ratios = core.compute_ratios(rounds, [("num", "den", 1.2, "num / den")])
    return {"meta": {"date": "2026-11-30", "placement": "unpinned", "cpu_count": 2,
                     "rounds": 7, "trial_seconds": 0.3, "command": "verdicts.py"},
            "verdicts": ratios, "context": [], "results": []}


def test_the_verdict_chart_comes_from_the_table_or_the_json(tmp_path: Path) -> None:
    need("matplotlib")
    from benchmarks import verdicts

    payload = _verdict_payload()
    data = tmp_path / "verdicts.json"
    data.write_text(json.dumps(payload))
    results = tmp_path / "RESULTS.md"
    results.write_text("## Verdicts (issue 19)\n\n" + verdicts.render(payload) + "\n\n"
                       + (ROOT / "benchmarks" / "RESULTS.md").read_text())
    for extra in ([], ["--verdicts-json", str(data)]):
        out_dir = tmp_path / ("json" if extra else "table")
        out = subprocess.run([sys.executable, str(ROOT / "tools" / "charts.py"), "--results",
                              str(results), "--out", str(out_dir), *extra],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert (out_dir / "bench-verdicts.png").read_bytes().startswith(PNG)
