"""The web viewer: a page on a loopback port with the live frame, a HUD and the controls.

Routes (GET only):

* ``/``, ``/viewer.js``, ``/viewer.css``: the page, shipped in ``rlmesh/viewer/static``.
* ``/state.json``: the HUD (episode, step, reward, return, source, sources, fps) and
  ``frame``, the number of the newest encoded frame.
* ``/frame`` (also ``/frame.png``): the newest frame, PNG or JPEG as the :class:`View` says.
* ``/stream``: the frames as a ``multipart/x-mixed-replace`` stream.
* ``/control?action=skip|quit|next|source&name=...``: the controls.

Frames are encoded on the display's own thread, only the newest one: a frame that arrives
while another is encoded replaces the one waiting.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import json
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rlmesh.errors import RLMeshWarning
from rlmesh.viewer.frames import LatestFrame
from rlmesh.viewer.http import Reply, Route, ViewerServer
from rlmesh.viewer.png import encode_png
from rlmesh.viewer.state import ViewerState

__all__ = ["HttpDisplay", "encoder_for"]

_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
           "/viewer.css": ("viewer.css", "text/css; charset=utf-8")}


def _jpeg(quality: int) -> Any:
    from PIL import Image

    def encode(frame: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(frame).save(out, format="JPEG", quality=quality)
        return out.getvalue()
    return encode


def encoder_for(format: str, quality: int) -> tuple[str, Any]:
    """``(content type, frame -> bytes)`` for ``format``; PNG (and a warning) without Pillow."""
    if format == "jpeg":
        try:
            return "image/jpeg", _jpeg(quality)
        except ImportError:
            warnings.warn("the viewer's JPEG frames need Pillow, which is not installed; "
                          "frames are PNG", RLMeshWarning, stacklevel=4)
    return "image/png", encode_png


def _static(name: str, content_type: str) -> Route:
    body = importlib.resources.files("rlmesh.viewer").joinpath("static").joinpath(name).read_bytes()
    return lambda query: Reply(body, content_type)


class HttpDisplay:
    """Serves the viewer page and encodes frames on its own thread.

    Args:
        slot: Where the run puts frames.
        state: The HUD and controls.
        host: Where to listen (loopback by default).
        port: The port (``None`` or 0: a free one).
        format: ``"png"`` or ``"jpeg"``.
        quality: JPEG quality.

    Raises:
        OSError: If the port cannot be bound (in use, or not allowed).
    """

    def __init__(self, slot: LatestFrame, state: ViewerState, *, host: str = "127.0.0.1",
                 port: int | None = None, format: str = "png", quality: int = 80) -> None:
        self._slot, self._state = slot, state
        self.content_type, self._encode = encoder_for(format, quality)
        self._frame: tuple[int, bytes | None] = (0, None)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.shown = 0
        routes: dict[str, Route] = {path: _static(*item) for path, item in _STATIC.items()}
        routes.update({"/state.json": self._state_json, "/frame": self._frame_reply,
                       "/frame.png": self._frame_reply, "/stream": self._stream,
                       "/control": self._control})
        self._server = ViewerServer(routes, host, port or 0)
        self._thread = threading.Thread(target=self._encode_loop, name="rlmesh-viewer-encode",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's address."""
        return self._server.url

    def _encode_loop(self) -> None:
        version = 0
        try:
            while not self._stop.is_set():
                newer, frame = self._slot.wait_newer(version, 0.25)
                if newer == version or frame is None:
                    continue
                version = newer
                data = self._encode(frame)
                with self._cond:
                    self.shown += 1
                    self._frame = (self.shown, data)
                    self._cond.notify_all()
        except Exception as exc:
            self._state.fail(exc)

    def _state_json(self, query: Mapping[str, list[str]]) -> Reply:
        state = self._state.snapshot()
        state["frame"] = self._frame[0]
        return Reply(json.dumps(state).encode(), "application/json")

    def _frame_reply(self, query: Mapping[str, list[str]]) -> Reply:
        data = self._frame[1]
        if data is None:
            return Reply(b"no frame yet", status=503)
        return Reply(data, self.content_type)

    def _stream(self, query: Mapping[str, list[str]]) -> Reply:
        return Reply(self._parts(), "multipart/x-mixed-replace; boundary=frame")

    def _parts(self) -> Iterator[bytes]:
        seen = 0
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(functools.partial(self._fresh, seen), 0.5)
                number, data = self._frame
            if number > seen and data is not None:
                seen = number
                yield (b"--frame\r\nContent-Type: " + self.content_type.encode()
                       + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n"
                       + data + b"\r\n")

    def _fresh(self, seen: int) -> bool:
        return self._frame[0] > seen or self._stop.is_set()

    def _control(self, query: Mapping[str, list[str]]) -> Reply:
        action = (query.get("action") or [""])[0]
        names = query.get("name")
        name = names[0] if names else None
        if not self._state.request(action, name):
            return Reply(json.dumps({"ok": False, "error": f"unknown control {action!r} "
                                     f"(name {name!r})"}).encode(), "application/json", 400)
        return Reply(json.dumps({"ok": True}).encode(), "application/json")

    def close(self) -> None:
        """Stop encoding and serving (open streams end)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(2)
        self._server.close()
