"""The evaluation dashboard: one web page for a whole multi-endpoint run.

``rlmesh eval ... --view http[:PORT]`` and ``rlmesh.evaluate(..., view="http[:PORT]")`` serve
it. The page (``static/dashboard.*``, shipped in the package: no build step, nothing fetched
from elsewhere) shows a tile per endpoint with its live frame, episode, step and return; a
plot of episode returns by seed with the running mean and its 95% band; the events as they
happen (failures, replays, returns); and the summary when the run ends. It polls:

``/``
    The page (and ``/dashboard.js``, ``/dashboard.css``).
``/state.json?wait=MS``
    :meth:`Board.state <rlmesh.viewer.board.Board.state>`, answered after ``MS``
    milliseconds (at most 2000) or as soon as the run ends: the server sets the page's pace,
    so a headless browser whose clock runs ahead still sees the run live.
``/frame.png?endpoint=K``
    The latest frame of tile ``K`` (404 until it has one).

The server listens on loopback unless told otherwise.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

from rlmesh.viewer.board import Board
from rlmesh.viewer.http import Reply, ViewerServer
from rlmesh.viewer.png import encode_png

__all__ = ["Dashboard"]

_ASSETS = {"/": ("dashboard.html", "text/html; charset=utf-8"),
           "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
           "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
_LONGEST_WAIT_MS = 2000.0
"""The longest a ``/state.json?wait=MS`` request is held."""


def _asset(name: str) -> bytes:
    return resources.files("rlmesh.viewer").joinpath("static").joinpath(name).read_bytes()


class Dashboard:
    """A :class:`~rlmesh.viewer.board.Board` served as a web page.

    Pass one as ``view=`` to ``rlmesh.evaluate`` to keep the page (and its final summary)
    after the run: a dashboard made by ``evaluate`` from ``view="http:PORT"`` closes when the
    run returns. Use it as a context manager or call :meth:`close`.

    Args:
        port: Where to listen (0: any free port; see :attr:`url`).
        host: The interface (loopback by default; anything else exposes the run's frames).
        fps: Frames per second each tile gets at most (the run renders no more than that).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", fps: float = 5.0) -> None:
        self.board = Board(fps)
        self._pngs: dict[int, tuple[int, bytes]] = {}
        self._png_lock = threading.Lock()
        routes = {path: self._static(name, kind) for path, (name, kind) in _ASSETS.items()}
        routes["/state.json"] = self._state
        routes["/frame.png"] = self._frame
        self._server = ViewerServer(routes, host, port)

    @property
    def url(self) -> str:
        """The page's address."""
        return self._server.url

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._server.port

    def linger(self, seconds: float) -> None:
        """Keep serving for ``seconds`` (``inf``: until Ctrl+C), then return."""
        deadline = time.monotonic() + seconds if math.isfinite(seconds) else math.inf
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0.0)))

    def close(self) -> None:
        """Stop serving."""
        self._server.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routes ------------------------------------------------------------------------------

    @staticmethod
    def _static(name: str, kind: str) -> Any:
        body = _asset(name)

        def route(query: Mapping[str, list[str]]) -> Reply:
            return Reply(body, kind)
        return route

    def _state(self, query: Mapping[str, list[str]]) -> Reply:
        try:
            wait = min(max(float(query.get("wait", ["0"])[0]), 0.0), _LONGEST_WAIT_MS) / 1000
        except ValueError:
            return Reply(b"wait must be a number of milliseconds", status=400)
        if wait and not self.board.ended.is_set():
            self.board.ended.wait(wait)  # the page's pace: one snapshot per wait
        body = json.dumps(_plain(self.board.state()), allow_nan=False).encode()
        return Reply(body, "application/json")

    def _frame(self, query: Mapping[str, list[str]]) -> Reply:
        try:
            slot = int(query.get("endpoint", ["0"])[0])
        except ValueError:
            return Reply(b"endpoint must be a tile number", status=400)
        tile = self.board.tile(slot)
        version, frame = tile.frame.get() if tile is not None else (0, None)
        if frame is None:
            return Reply(b"no frame yet", status=404)
        with self._png_lock:
            cached = self._pngs.get(slot)
            if cached is None or cached[0] != version:
                cached = self._pngs[slot] = (version, encode_png(frame))
        return Reply(cached[1], "image/png", headers={"X-Frame-Version": str(version)})


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: non-finite numbers ``null``, numpy scalars numbers.

    Anything else unknown becomes its text.
    """
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    return _plain(item()) if callable(item) else str(value)
