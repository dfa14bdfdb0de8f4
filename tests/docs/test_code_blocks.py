"""Every Python and shell block of README.md and of every page of the site runs as written.

The site's pages are ``docs/**/*.md``; a page line ``<!-- include PATH -->`` stands for the
file at ``PATH`` (as the site shows it, ``tools/mkdocs_hooks.py``), so the blocks of included
files (``CHANGELOG.md``, ``benchmarks/RESULTS.md``) are read here as part of their page.

Each block runs in a fresh directory (with ``examples/`` linked in, and the document's
``file`` blocks written there), in a child process of its own, against real servers. What a
block may need is said in an HTML comment on the line before it, invisible on the rendered
page; items are separated by ``;``:

* ``serve PORT TARGET [ARGS...]``: an ``rlmesh serve TARGET ARGS...`` child is listening at
  ``127.0.0.1:PORT`` while the block runs;
* ``background``: the block serves until interrupted: it is started, every address in it
  must come to serve, then Ctrl+C must stop it cleanly (exit 0);
* ``file NAME``: the block is the file NAME that other blocks of the page use;
* ``needs MODULE``: an optional dependency (skipped without it, unless CI requires it);
* ``omit TEXT``: leave out the lines containing TEXT (saying why);
* ``skip REASON``: not run, for the reason given.

Two rewrites make the blocks runnable side by side, and nothing else is changed: every
``HOST:PORT`` address (``127.0.0.1``, ``0.0.0.0``, ``localhost``) becomes a free loopback
port, and ``uv run`` prefixes are dropped (the test runs inside the environment uv made).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmesh import probe
from rlmesh.testing import ServerProcess, spawn_server
from tests.support.deps import need
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash",
             "shell": "bash"}
ADDRESS = re.compile(r"(?<![\w.])(?:127\.0\.0\.1|0\.0\.0\.0|localhost):(\d{4,5})\b")
UV_RUN = re.compile(r"\buv run (?:--\S+ )*")
DIRECTIVE = re.compile(r"^<!--\s*test:(.*?)-->\s*$")
INCLUDE = re.compile(r"^<!--\s*include\s+(\S+)\s*-->\s*$", re.MULTILINE)
KEYS = {"serve", "background", "file", "needs", "omit", "skip"}

pytestmark = pytest.mark.timeout(240)


@dataclasses.dataclass
class Block:
    """One fenced block of a page, with its directives."""

    page: Path
    line: int
    language: str
    code: str
    directives: list[tuple[str, str]]

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def values(self, key: str) -> list[str]:
        return [value for k, value in self.directives if k == key]


def read_blocks(page: Path) -> list[Block]:
    """The runnable fenced blocks of ``page`` (a language we run, or a directive)."""
    lines = page_text(page).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = lines[index].strip()
        if not fence.startswith("```"):
            index += 1
            continue
        language = fence[3:].strip()
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        directives = _directive(lines, index)
        if language in LANGUAGES or directives:
            if language not in LANGUAGES:
                raise AssertionError(f"{page.name}:{index + 1}: a directive on a block of "
                                     f"language {language!r}")
            blocks.append(Block(page, index + 1, LANGUAGES[language],
                                "\n".join(lines[index + 1:end]) + "\n", directives))
        index = end + 1
    return blocks


def page_text(page: Path) -> str:
    """The page's Markdown with its ``include`` lines replaced by the files they name."""
    return INCLUDE.sub(lambda match: (ROOT / match.group(1)).read_text(), page.read_text())


def _directive(lines: list[str], fence: int) -> list[tuple[str, str]]:
    match = DIRECTIVE.match(lines[fence - 1].strip()) if fence else None
    if match is None:
        return []
    items = []
    for item in filter(None, (part.strip() for part in match.group(1).split(";"))):
        key, _, value = item.partition(" ")
        if key not in KEYS:
            raise AssertionError(f"unknown test directive {key!r} (one of {sorted(KEYS)})")
        items.append((key, value.strip()))
    return items


ALL = [block for page in PAGES for block in read_blocks(page)]


def test_every_page_block_is_run_or_skipped_with_a_reason() -> None:
    assert len(ALL) >= 15, "the pages lost their examples?"
    for block in ALL:
        for reason in block.values("skip") + block.values("omit"):
            assert len(reason.split()) >= 2, f"{block.name}: say why, not just {reason!r}"


# -- running a block ------------------------------------------------------------------------


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Workspace:
    """A block's directory, ports and servers."""

    def __init__(self, block: Block, directory: Path) -> None:
        self.block = block
        self.directory = directory
        self.ports: dict[str, int] = {}
        self.servers: list[ServerProcess] = []
        for name in ("examples",):
            (directory / name).symlink_to(ROOT / name)
        for other in read_blocks(block.page):
            for filename in other.values("file"):
                (directory / filename).write_text(other.code)

    def port(self, documented: str) -> int:
        if documented not in self.ports:
            self.ports[documented] = free_port()
        return self.ports[documented]

    def rewrite(self, code: str) -> str:
        for text in self.block.values("omit"):
            code = "".join(line for line in code.splitlines(keepends=True)
                           if text.split(" (")[0] not in line)
        code = ADDRESS.sub(lambda m: f"127.0.0.1:{self.port(m.group(1))}", code)
        return UV_RUN.sub("", code)

    def start_servers(self) -> None:
        for spec in self.block.values("serve"):
            port, target, *args = spec.split()
            address = f"127.0.0.1:{self.port(port)}"
            self.servers.append(spawn_server(target, address=address, extra_args=args))

    def environment(self) -> dict[str, str]:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        # (faulthandler: a block that hangs is made to print every thread's stack, below)
        return {**os.environ, "PATH": path, "PYTHONFAULTHANDLER": "1"}

    def command(self, code: str) -> list[str]:
        script = self.directory / ("block.py" if self.block.language == "python" else "block.sh")
        script.write_text(code)
        if self.block.language == "python":
            return [sys.executable, str(script)]
        return ["bash", "-e", str(script)]

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    space = Workspace(request.param, tmp_path)
    try:
        yield space
    finally:
        space.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.parametrize("workspace", [b for b in ALL if not b.values("skip")
                                       and not b.values("file")],
                         ids=lambda b: b.name, indirect=True)
def test_block_runs_as_written(workspace: Workspace) -> None:
    block = workspace.block
    for module in block.values("needs"):
        need(module)
    code = workspace.rewrite(block.code)
    workspace.start_servers()
    log = workspace.directory / "output.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            workspace.command(code), cwd=workspace.directory, env=workspace.environment(),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        if block.values("background"):
            _serve_then_interrupt(workspace, process, log)
        else:
            try:
                process.wait(200)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{block.name} did not finish:\n{log.read_text()}"
                                     ) from None
        assert process.returncode == 0, (
            f"{block.name} exited with {process.returncode}:\n{code}\n--- output:\n"
            f"{log.read_text(errors='replace')}")
    finally:
        _kill_group(process)


def _signal_masks(pid: int) -> str:
    """The signal masks of ``pid``'s threads (``/proc``), for a process that ignored Ctrl+C."""
    lines = []
    with contextlib.suppress(OSError):
        for task in sorted(os.listdir(f"/proc/{pid}/task")):
            status = Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines()
            lines.append(task + " " + " ".join(
                line.replace("\t", "") for line in status if line.startswith(("Sig", "Name"))))
    return "; ".join(lines) or "no /proc"


def _serve_then_interrupt(workspace: Workspace, process: subprocess.Popen[bytes],
                          log: Path) -> None:
    """A serving block: every address in it comes up and answers; Ctrl+C stops it."""
    ports = list(workspace.ports.values())
    assert ports, f"{workspace.block.name}: a background block names no address"
    deadline = time.monotonic() + 60
    for port in ports:
        while not listening(port):
            assert process.poll() is None, f"exited with {process.returncode}:\n" \
                f"{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"nothing listens on {port}:\n{log.read_text()}"
            time.sleep(0.05)
        contract = probe(f"127.0.0.1:{port}", wait=10, token=None)
        # (an endpoint with a token says only that it needs one: that is serving too)
        assert contract.get("kind") == "env" or contract.get("auth") is True, contract
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        masks = _signal_masks(process.pid)
        os.killpg(process.pid, signal.SIGABRT)  # (its threads' stacks go to the log)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        raise AssertionError(f"Ctrl+C did not stop it ({masks}):\n{log.read_text()}") from None
