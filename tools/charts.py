"""Draw the benchmark charts of the documentation site from ``benchmarks/RESULTS.md``.

The benchmarks write their results as Markdown tables into ``benchmarks/RESULTS.md``; this
script reads the current tables back (the two-core table of ``bench_core.py``, the table of
``bench_vector.py`` and the verdict table of ``benchmarks/verdicts.py``) and draws them into
``docs/images/`` for the performance pages::

    uv run python tools/charts.py              # rewrites docs/images/bench-*.png
    uv run python tools/charts.py --out DIR    # elsewhere
    uv run python tools/charts.py --verdicts-json verdicts.json   # verdicts from a run's JSON

Needs matplotlib (the ``plot`` extra, or ``uv sync --all-groups``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

CHARTS = {
    # file name -> (heading the table follows, column drawn, axis label, title)
    "bench-core.png": ("### two cores (split)", "median ops/s", "steps per second",
                       "One env, one client: steps/s (two cores)"),
    "bench-vector.png": ("### Vector envs, unpinned (none)", "median env-steps/s",
                         "env-steps per second", "Vector envs: env-steps/s"),
}


VERDICTS_HEADING = "## Verdicts (issue 19)"
VERDICT_HEADER = "| ratio (median of per-round ratios) |"
VERDICTS_CHART = "bench-verdicts.png"


def table_after(text: str, heading: str, header: str = "|") -> list[dict[str, str]]:
    """The rows of the first Markdown table after ``heading``, as column -> cell.

    ``header``: the table's header row starts so (the first table: any).
    """
    start = text.index(heading)
    lines = text[start:].splitlines()[1:]
    first = next((i for i, line in enumerate(lines) if line.startswith(header)), len(lines))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    if len(table) < 3:
        raise ValueError(f"no table after {heading!r} in {RESULTS.name}")
    columns, body = table[0], table[2:]
    return [dict(zip(columns, row, strict=False)) for row in body]


def number(cell: str) -> float:
    """A table cell such as ``50,153`` as a float."""
    match = re.match(r"^[\d,.]+", cell)
    if match is None:
        raise ValueError(f"not a number: {cell!r}")
    return float(match.group(0).replace(",", ""))


def draw(rows: list[dict[str, str]], column: str, label: str, title: str, path: Path) -> None:
    """A horizontal bar chart of ``column`` per benchmark row, rlmesh rows highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = [row["benchmark"] for row in rows]
    values = [number(row[column]) for row in rows]
    colors = ["#3f51b5" if "rlmesh" in name else "#9e9e9e" for name in names]
    figure, axes = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.2), dpi=100)
    axes.barh(range(len(rows)), values, color=colors)
    axes.set_yticks(range(len(rows)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel(label)
    axes.set_title(title, fontsize=10)
    for index, value in enumerate(values):
        axes.text(value, index, f" {value:,.0f}", va="center", fontsize=7)
    axes.margins(x=0.15)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def verdict_rows(text: str) -> list[tuple[str, float, float, float, float]]:
    """(label, goal, median, q1, q3) per goal row of the verdict table in ``text``."""
    rows = []
    # (the section's first table of the harness's report; a summary table may precede it)
    for row in table_after(text, VERDICTS_HEADING, VERDICT_HEADER):
        goal = row["goal"].removeprefix(">=").strip()
        if goal == "-":
            continue
        q1, q3 = row["IQR"].split("-")
        rows.append((row["ratio (median of per-round ratios)"], number(goal),
                     number(row["median"]), number(q1), number(q3)))
    return rows


def json_verdict_rows(path: Path) -> list[tuple[str, float, float, float, float]]:
    """The same rows from the JSON payload ``benchmarks/verdicts.py --json`` wrote."""
    import json

    payload = json.loads(path.read_text())
    return [(q["label"], float(q["target"]), float(q["ratio"]), float(q["q1"]), float(q["q3"]))
            for q in payload["verdicts"] if q.get("target") is not None]


def draw_verdicts(rows: list[tuple[str, float, float, float, float]], path: Path) -> None:
    """Per goal: the measured ratio as a fraction of its goal (bar, IQR whisker); 1 = goal."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if not rows:
        raise ValueError("no verdict rows to draw")
    labels = [row[0] for row in rows]
    scaled = [m / g for _, g, m, _, _ in rows]
    spread = [[(m - q1) / g for _, g, m, q1, _ in rows], [(q3 - m) / g for _, g, m, _, q3 in rows]]
    colors = ["#2e7d32" if value >= 1 else "#c62828" for value in scaled]
    figure, axes = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.4), dpi=100)
    axes.barh(range(len(rows)), scaled, xerr=spread, color=colors, capsize=3)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("measured ratio / goal (1 = goal; whisker: IQR of the per-round ratios)")
    axes.set_title("Verdicts: each ratio against its goal (green: met)", fontsize=10)
    for index, (_, goal, median, _, q3) in enumerate(rows):
        axes.text(max(q3 / goal, 1.0), index, f"  {median:.2f} (goal {goal:.2f})", va="center",
                  fontsize=7)
    axes.margins(x=0.25)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def main(argv: list[str] | None = None) -> list[Path]:
    """Draw every chart; returns the files written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--verdicts-json", type=Path, default=None,
                        help="draw the verdict chart from this benchmarks/verdicts.py --json "
                             "payload instead of the table in the results")
    args = parser.parse_args(argv)
    text = args.results.read_text()
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (heading, column, label, title) in CHARTS.items():
        path = args.out / name
        draw(table_after(text, heading), column, label, title, path)
        written.append(path)
        print(f"wrote {path}")
    rows = (json_verdict_rows(args.verdicts_json) if args.verdicts_json is not None
            else verdict_rows(text))
    path = args.out / VERDICTS_CHART
    draw_verdicts(rows, path)
    written.append(path)
    print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
