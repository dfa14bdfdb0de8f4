"""MkDocs hooks of the documentation site (``mkdocs.yml``): includes and links out of ``docs/``.

Two things the plain Markdown pages need to become a site, done before the page is parsed:

* ``<!-- include PATH -->`` on a line of its own is replaced by the file at ``PATH`` (relative
  to the repository root), so a page shows ``CHANGELOG.md`` or ``benchmarks/RESULTS.md``
  exactly as they are kept. ``tests/docs/test_code_blocks.py`` expands it the same way, so
  the code blocks of an included file are run like every other block of the site.
* A relative link that leaves ``docs/`` (``../benchmarks/RESULTS.md``,
  ``../examples/python/cleanrl_ppo.py``) is rewritten: to the page that includes the file when
  there is one, otherwise to the file's path shown as code. A link to a file that does not
  exist is left alone, so the strict build reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
INCLUDE = re.compile(r"^<!--\s*include\s+(\S+)\s*-->\s*$", re.MULTILINE)
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _included() -> dict[str, str]:
    """Repository path of each included file -> the page (relative to docs/) including it."""
    pages: dict[str, str] = {}
    for page in DOCS.rglob("*.md"):
        for match in INCLUDE.finditer(page.read_text()):
            pages[match.group(1)] = page.relative_to(DOCS).as_posix()
    return pages


def _rewrite_links(text: str, source_dir: str, page_dir: str, included: dict[str, str]) -> str:
    """Rewrite the relative links of ``text`` (written in ``source_dir``) for ``page_dir``.

    Both directories are relative to the repository root (``""`` is the root itself).
    """

    def replace(match: re.Match[str]) -> str:
        label, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)
        path = posixpath.normpath(posixpath.join(source_dir, target))
        if not (ROOT / path).exists():
            return match.group(0)   # the strict build reports the broken link
        if path in included:
            path = posixpath.join("docs", included[path])
        if path.startswith("docs/"):
            return f"[{label}]({posixpath.relpath(path, page_dir or '.')}{anchor})"
        return f"{label} (`{path}`)" if f"`{path}`" != label else label

    return LINK.sub(replace, text)


def expand(markdown: str, page_path: str) -> str:
    """The Markdown of the page at ``page_path`` (relative to docs/) as the site shows it."""
    page_dir = posixpath.dirname(posixpath.join("docs", page_path))
    included = _included()

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        text = (ROOT / name).read_text()
        return _rewrite_links(text, posixpath.dirname(name), page_dir, included)

    markdown = INCLUDE.sub(include, markdown)
    return _rewrite_links(markdown, page_dir, page_dir, included)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs hook: expand includes and rewrite the links that leave ``docs/``."""
    return expand(markdown, page.file.src_uri)
