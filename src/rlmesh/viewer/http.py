"""A small HTTP server for the viewer pages, from the standard library.

Routes map a path to a handler ``(query) -> Reply``. The server binds loopback unless told
otherwise, serves each request in its own thread (daemon threads: a browser holding a
connection never keeps a run alive), and answers only GET. Nothing on a page is fetched from
elsewhere: every asset ships in the package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Reply", "Route", "ViewerServer"]


@dataclass
class Reply:
    """What a route answers: a status, a content type, and a body (bytes or a stream).

    A stream is an iterator of byte chunks (for ``multipart/x-mixed-replace`` or
    ``text/event-stream``); it ends when the iterator does or the client goes away.
    """

    body: bytes | Iterator[bytes]
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Mapping[str, list[str]]], Reply]
"""A handler: the parsed query string in, a :class:`Reply` out."""


class _Handler(BaseHTTPRequestHandler):
    routes: Mapping[str, Route] = {}
    server_version = "rlmesh-viewer"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        route = self.routes.get(parts.path)
        if route is None:
            self._send(Reply(b"not found", status=404))
            return
        try:
            reply = route(parse_qs(parts.query))
        except Exception as exc:  # a broken route answers 500, the server goes on
            self._send(Reply(f"error: {exc}".encode(), status=500))
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, bytes):
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.end_headers()
        try:
            for chunk in reply.body:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a viewer does not log every request."""


class ViewerServer:
    """An HTTP server for one viewer page, running in a background thread.

    Args:
        routes: Path -> handler.
        host: Where to listen (loopback by default).
        port: The port (0: any free one; see :attr:`port`).
    """

    def __init__(self, routes: Mapping[str, Route], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        handler = type("ViewerHandler", (_Handler,), {"routes": dict(routes)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="rlmesh-viewer-http", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop serving (open streams end at their next chunk)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
