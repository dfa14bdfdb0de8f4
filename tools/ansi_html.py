"""Turn a terminal capture (``tmux capture-pane -e -p``) into a small self-contained HTML page.

    uv run python tools/ansi_html.py pane.ansi pane.html

The page is a monospace grid, one row per captured line. SGR colours are kept (24-bit
``38;2;R;G;B`` / ``48;2;R;G;B``, the 256-colour and 16-colour forms, bold); an upper half
block (U+2580) becomes a cell painted half in its foreground and half in its background
colour, so the picture does not depend on the font's glyph. Nothing is fetched: the page
holds everything it shows. Used by ``tools/screenshots.py``.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

FG, BG = "#d4d4d4", "#111317"
CELL_W, CELL_H = 9, 18
"""A cell's size in CSS pixels (the grid is exact: half blocks tile without gaps)."""
_PALETTE = ["#1e1e1e", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd",
            "#e5e5e5", "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6",
            "#29b8db", "#ffffff"]
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]")


def _colour256(n: int) -> str:
    if n < 16:
        return _PALETTE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return f"rgb({steps[n // 36]},{steps[n // 6 % 6]},{steps[n % 6]})"
    grey = 8 + 10 * (n - 232)
    return f"rgb({grey},{grey},{grey})"


class _Pen:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.fg: str | None = None
        self.bg: str | None = None
        self.bold = False

    def apply(self, params: str) -> None:
        codes = [int(c) if c else 0 for c in params.split(";")] if params else [0]
        k = 0
        while k < len(codes):
            code = codes[k]
            if code in (38, 48) and k + 1 < len(codes):
                if codes[k + 1] == 2 and k + 4 < len(codes):
                    value = f"rgb({codes[k + 2]},{codes[k + 3]},{codes[k + 4]})"
                    k += 4
                else:
                    value = _colour256(codes[k + 2] if k + 2 < len(codes) else 0)
                    k += 2
                self.fg, self.bg = (value, self.bg) if code == 38 else (self.fg, value)
            else:
                self._simple(code)
            k += 1

    def _simple(self, code: int) -> None:
        if code == 0:
            self.reset()
        elif code == 1:
            self.bold = True
        elif code == 22:
            self.bold = False
        elif code == 39:
            self.fg = None
        elif code == 49:
            self.bg = None
        elif 30 <= code <= 37 or 90 <= code <= 97:
            self.fg = _PALETTE[code - 30 if code < 90 else code - 82]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            self.bg = _PALETTE[code - 40 if code < 100 else code - 92]


def _line(text: str, pen: _Pen) -> str:
    """One captured line as HTML; ``pen`` carries the colours on (tmux does not repeat them)."""
    out, run, style = [], [], ""

    def flush() -> None:
        if run:
            out.append(f'<span style="{style}">{html.escape("".join(run))}</span>')
            run.clear()

    parts = _SGR.split(text)  # text, params, text, params, ..., text
    for k, part in enumerate(parts):
        if k % 2:
            flush()
            pen.apply(part)
            continue
        for char in part:
            if char == "\u2580":
                flush()
                top, bottom = pen.fg or FG, pen.bg or BG
                out.append(f'<i style="background:linear-gradient({top} 50%,{bottom} 50%)">'
                           "</i>")
                continue
            now = (f"color:{pen.fg or FG};background:{pen.bg or 'transparent'};"
                   f"font-weight:{'bold' if pen.bold else 'normal'}")
            if now != style:
                flush()
                style = now
            run.append(char)
    flush()
    return "".join(out)


def convert(ansi: str, title: str = "terminal") -> str:
    """The HTML page of a capture."""
    pen = _Pen()
    rows = [_line(_OTHER.sub("", line), pen) for line in ansi.split("\n")]
    while rows and not rows[-1]:
        rows.pop()
    body = "\n".join(f"<div>{row}</div>" for row in rows)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}
</title><style>
html, body {{ margin: 0; background: {BG}; }}
main {{ padding: 12px; font: 14.95px/{CELL_H}px "DejaVu Sans Mono", monospace; color: {FG}; }}
div {{ height: {CELL_H}px; white-space: pre; overflow: hidden; }}
span {{ display: inline-block; height: {CELL_H}px; }}
i {{ display: inline-block; width: {CELL_W}px; height: {CELL_H}px; vertical-align: top; }}
</style></head><body><main>{body}</main></body></html>
"""


def main() -> int:
    """Convert the capture named first into the page named second."""
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    target.write_text(convert(source.read_text(encoding="utf-8"), source.stem),
                      encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
