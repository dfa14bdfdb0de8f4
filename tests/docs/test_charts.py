"""``tools/charts.py`` draws the site's benchmark charts from ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.deps import need

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_charts_are_drawn_from_the_results_tables(tmp_path: Path) -> None:
    need("matplotlib")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "charts.py"), "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("bench-core.png", "bench-vector.png"):
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
