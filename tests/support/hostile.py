"""Hostile clients against a real server process: raw frames, and the server's footprint.

:func:`start_server` runs an ``EnvServer`` (a CartPole factory) in a child process with any
``ServeOptions`` (the CLI does not take them all), optionally under lower process limits or
as another user (``prefix``: ``prlimit``/``setpriv``); :class:`ServerChild` reads its RSS,
peak RSS, threads, descriptors and CPU time from ``/proc``. Every server binds 127.0.0.1
port 0 (or a unix socket) and is stopped by :meth:`ServerChild.stop`. With
``RLMESH_TEST_LENIENT_OPTIONS=1`` the child drops options its rlmesh does not know (to run
these tests against an older version and see them fail).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack

import rlmesh

PREFIX = struct.Struct("<II")
SRC = str(Path(rlmesh.__file__).resolve().parent.parent)

SERVER_SCRIPT = '''
import json, logging, os, resource, sys
import gymnasium as gym
from rlmesh import EnvServer, ServeOptions

config = json.loads(sys.argv[1])
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
held = []
if config["hold_fds"]:  # make the server's own descriptors land above 1,023
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = config["hold_fds"] + 64
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(config["hold_fds"])]
options = config["options"]
if os.environ.get("RLMESH_TEST_LENIENT_OPTIONS"):  # run against a version without some options
    import dataclasses
    known = {field.name for field in dataclasses.fields(ServeOptions)}
    options = {k: v for k, v in options.items() if k in known}
tls = None
if config["tls_cert"]:
    from rlmesh.tls import server_context
    tls = server_context(config["tls_cert"])
server = EnvServer(lambda: gym.make("CartPole-v1"), config["address"],
                   options=ServeOptions(**options), token=config["token"], tls=tls)
with open(config["ready"] + ".tmp", "w") as handle:
    handle.write(server.address)
os.rename(config["ready"] + ".tmp", config["ready"])
server.serve(banner=False)
'''


class ServerChild:
    """A server child process (see :func:`start_server`)."""

    def __init__(self, process: subprocess.Popen[bytes], address: str, tmpdir: str) -> None:
        self.process = process
        self.address = address
        self.tmpdir = tmpdir

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def stats(self) -> dict[str, float]:
        """``rss`` and ``peak`` (MiB), ``threads``, ``fds`` and ``cpu`` (s) of the child."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return {"rss": int(fields["VmRSS"].split()[0]) / 1024,
                "peak": int(fields["VmHWM"].split()[0]) / 1024,
                "threads": int(fields["Threads"]),
                "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
                "cpu": (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")}

    def log(self) -> str:
        """What the child wrote to stderr so far."""
        return (Path(self.tmpdir) / "stderr.log").read_text(errors="replace")

    def stop(self) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL), reap it, remove its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.process.returncode


def start_server(options: dict[str, Any] | None = None, *, token: str | None = None,
                 address: str = "127.0.0.1:0", prefix: Sequence[str] = (),
                 hold_fds: int = 0, tls_cert: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 60.0) -> ServerChild:
    """Start a CartPole-factory ``EnvServer`` with ``ServeOptions(**options)`` in a child.

    Args:
        options: ``ServeOptions`` fields.
        token: The server's token.
        address: Where it binds.
        prefix: A command the child runs under (``prlimit ...``, ``setpriv ...``).
        hold_fds: Descriptors the child opens before it builds the server.
        tls_cert: Serve TLS with this PEM file (certificate chain and key).
        extra_env: More environment variables for the child.
        timeout: Seconds to wait until it listens.
    """
    tmpdir = tempfile.mkdtemp(prefix="rlmesh-hostile-")
    os.chmod(tmpdir, 0o777)  # a child run as another user writes its ready file here
    ready = os.path.join(tmpdir, "ready")
    config = {"options": options or {}, "token": token, "address": address,
              "ready": ready, "hold_fds": hold_fds, "tls_cert": tls_cert}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [SRC, *filter(None, [os.environ.get("PYTHONPATH")])]), **(extra_env or {})}
    with open(os.path.join(tmpdir, "stderr.log"), "wb") as log:
        process = subprocess.Popen([*prefix, sys.executable, "-c", SERVER_SCRIPT,
                                    json.dumps(config)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, env=env, cwd=tmpdir)
    child = ServerChild(process, "", tmpdir)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if process.poll() is not None or time.monotonic() > deadline:
            text = child.log()
            child.stop()
            raise RuntimeError(f"the server child did not start:\n{text}")
        time.sleep(0.02)
    child.address = Path(ready).read_text()
    return child


def connect(address: str, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A raw client socket to ``address`` (from loopback address ``source``, if given)."""
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[len("unix://"):])
        return sock
    host, port = address.removeprefix("tls://").removeprefix("tcp://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout,
                                    (source, 0) if source else None)


def pack(value: Any) -> bytes:
    """``value`` as msgpack."""
    return bytes(msgpack.packb(value, use_bin_type=True))


def frame(header: bytes, body: bytes = b"") -> bytes:
    """One frame: prefix, header, body."""
    return PREFIX.pack(len(header), len(body)) + header + body


def hello(**extra: Any) -> bytes:
    """A HELLO frame."""
    return frame(pack([0, 0, {"rlmesh": 1, "client": "hostile", **extra}]))


def read_reply(sock: socket.socket, timeout: float = 5.0) -> Any:
    """The next reply header, decoded; ``None`` if the connection ended first.

    Raises:
        TimeoutError: If nothing came within ``timeout``.
    """
    sock.settimeout(timeout)
    try:
        prefix = _read(sock, PREFIX.size)
        if prefix is None:
            return None
        hlen, blen = PREFIX.unpack(prefix)
        data = _read(sock, hlen + blen)
    except (ConnectionResetError, BrokenPipeError):
        return None
    return None if data is None else msgpack.unpackb(data[:hlen], raw=False,
                                                     strict_map_key=False)


def _read(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def ended(sock: socket.socket, within: float) -> bool:
    """Whether the server closed ``sock`` within ``within`` seconds (its bytes are dropped)."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (TimeoutError, BlockingIOError):
            return False


def close_all(socks: list[socket.socket]) -> None:
    """Close every socket (errors ignored)."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
