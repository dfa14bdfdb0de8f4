"""Attacks on the same-host region (security review D1, D7, D8, D16), against real servers.

The server creates each session's region itself, as a sealed memfd sized to the session and
reserved up front (``docs/reliability.md``). Every attack here worked against the design it
replaced, where the client created a file in ``/dev/shm`` and named it in its HELLO: a client
shrank it and killed the server with SIGBUS (D1), a full ``/dev/shm`` did the same (D7),
another user named a victim's file and the server mapped it (D8), and a region outlived a
client and server killed mid-handshake (D16). Each attack speaks both designs (it offers a
file of its own *and* takes any region offered), so it fails on the old code.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from rlmesh.numpy import RemoteEnv
from rlmesh.testing import ServerProcess
from rlmesh.transport import shm
from rlmesh.transport.stream import Connection
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from tests.support.processes import alive, kill_stragglers

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the region is Linux-only"),
    pytest.mark.timeout(60),
]

OP_HELLO, OP_PING, OP_REGION = 0, 5, 13
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (setpriv, a private mount "
                                "namespace); CI runs as root")
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as handle:
        return handle.read().strip()


def pid_namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def exchange(conn: Connection, message: list[Any]) -> Any:
    conn.send(*Encoder().encode(message))
    return Decoder().decode(*conn.recv())


def own_file(size: int) -> tuple[str, int]:
    """A region file in /dev/shm as the old client made one: name and open descriptor."""
    name = f"rlmesh-{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    return name, fd


def region_maps(pid: int) -> list[str]:
    """Lines of ``/proc/PID/maps`` that map an rlmesh region (either design)."""
    with open(f"/proc/{pid}/maps") as handle:
        return [line for line in handle if "rlmesh-" in line]


@pytest.fixture
def shm_names() -> Iterator[list[str]]:
    """Names this test created in /dev/shm, removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(f"/dev/shm/{name}")


def still_serves(address: str) -> None:
    """A fresh client gets correct steps from ``address``."""
    with RemoteEnv(address, timeout=10) as env:
        env.reset(seed=0)
        for _ in range(20):
            env.step(env.action_space.sample())


# == D1: the client resizes the region ========================================================


def test_a_client_cannot_shrink_the_region_under_the_server(
        spawn: Callable[..., ServerProcess], shm_names: list[str]) -> None:
    server = spawn("CartPole-v1")
    witness = RemoteEnv(server.address, timeout=10)
    witness.reset(seed=1)
    size = 1 << 20
    name, fd = own_file(size)
    shm_names.append(name)
    sock = socket.create_connection(split(server.address), timeout=10)
    conn = Connection(sock, 1 << 24)
    conn.set_timeout(10)
    try:
        hello = {"rlmesh": 1, "client": "attacker", "capabilities": ["shm", "shm-link"],
                 "shm": {"name": name, "size": size, "host": boot_id(),
                         "pidns": pid_namespace()}}
        contract = exchange(conn, [OP_HELLO, 0, hello])[2]
        offered = contract.get("shm")
        shrunk = False
        if offered is True:  # the server mapped our own file: shrink it, then use it
            ctl = mmap.mmap(fd, 4096)
            os.ftruncate(fd, 4096)
            shrunk = True
            ctl[0:4] = (1).to_bytes(4, "little")  # "a request is in the request slot"
            sock.sendall(b"W")
        elif isinstance(offered, dict):  # the server's region: try to shrink that
            theirs = os.open(f"/proc/{offered['pid']}/fd/{offered['fd']}", os.O_RDWR)
            try:
                for new_size in (4096, 0, offered["size"] * 2):
                    with contextlib.suppress(PermissionError):
                        os.ftruncate(theirs, new_size)
                        shrunk = True
                with contextlib.suppress(PermissionError):
                    os.posix_fallocate(theirs, 0, offered["size"] * 2)
                    shrunk = True
            finally:
                os.close(theirs)
            conn.send(*Encoder().encode([OP_REGION, 0, {"attached": True}]))
        time.sleep(0.5)  # the server reads the slot now
        assert server.process.poll() is None, (
            f"the server died (exit {server.process.returncode}; -7 is SIGBUS)")
        assert not shrunk, "the client could resize a region the server maps"
        witness.step(witness.action_space.sample())  # the other session goes on
        still_serves(server.address)
    finally:
        conn.close()
        os.close(fd)
        witness.close()


# == D7: a full /dev/shm ======================================================================


FULL_SHM_SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    import numpy as np
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", "/dev/shm"], check=True)
    with open("/dev/shm/filler", "wb") as handle:  # leave 512 KiB free
        handle.write(b"x" * (8 * 1024 * 1024 - 512 * 1024))
    from rlmesh.numpy import RemoteEnv
    from rlmesh.testing import spawn_server
    server = spawn_server("rlmesh.envs:ImageEnv", kwargs={"height": 512, "width": 512})
    report = {"steps": 0}
    try:
        with RemoteEnv(server.address, timeout=10) as env:
            report["shm"] = env.contract["shm"]
            env.reset(seed=0)
            for i in range(30):
                obs = env.step(np.int64(i % 4))[0]
                assert obs.shape == (512, 512, 3) and (obs == i % 4).all()
                report["steps"] += 1
    except Exception as exc:
        report["error"] = repr(exc)
    report["server_exit"] = server.process.poll()
    server.stop()
    print("REPORT " + json.dumps(report), flush=True)
""")


@needs_root
def test_a_full_dev_shm_does_not_kill_the_server() -> None:
    """768 KiB observations with 512 KiB free in /dev/shm (a private tmpfs of 8 MiB)."""
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
         FULL_SHM_SCRIPT], capture_output=True, timeout=50)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    line = next(x for x in result.stdout.decode().splitlines() if x.startswith("REPORT "))
    report = json.loads(line.split(" ", 1)[1])
    assert report.get("error") is None and report["server_exit"] is None, report
    assert report["steps"] == 30
    assert report["shm"] is True, "the region does not live in /dev/shm: it should still work"


SMALL_FILES = ("import os, resource, sys; "
               "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); "
               "os.execv(sys.executable, [sys.executable, '-m', 'rlmesh', *sys.argv[1:]])")
"""Run ``rlmesh`` with a 64 KiB file-size limit (memfds count: reserving a region fails)."""


def test_a_region_that_cannot_be_reserved_falls_back_to_sockets(tmp_path: Any) -> None:
    """The server reserves the region up front: when that fails, the session uses sockets."""
    address = f"unix://{tmp_path}/s.sock"
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", SMALL_FILES, "serve", "rlmesh.envs:ImageEnv", "--address",
         address, "--ready-file", str(ready),
         "--kwargs", json.dumps({"height": 256, "width": 256})],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text().strip()):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with RemoteEnv(ready.read_text().strip(), timeout=10) as env:
            assert env.contract["shm"] is False
            env.reset(seed=0)
            for i in range(10):
                assert (env.step(np.int64(i % 4))[0] == i % 4).all()
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(10)


def test_the_region_is_sized_to_the_session(spawn: Callable[..., ServerProcess]) -> None:
    """CartPole gets a small region, 512x512 images one that holds two observations."""
    sizes = {}
    for name, target, kwargs in (("cartpole", "CartPole-v1", None),
                                 ("images", "rlmesh.envs:ImageEnv",
                                  {"height": 512, "width": 512})):
        server = spawn(target, kwargs=kwargs)
        with RemoteEnv(server.address, timeout=10) as env:
            assert env.contract["shm"] is True
            region = env._channel._conn.shm
            sizes[name] = region.size
            assert len(region_maps(server.pid)) == 1
    assert sizes["cartpole"] <= 256 * 1024, sizes
    assert 2 * 512 * 512 * 3 < sizes["images"] <= 4 * 512 * 512 * 3, sizes


# == D8: another user names a victim's region =================================================


ATTACKER_SCRIPT = textwrap.dedent("""
    import json, os, socket, sys
    host, port, server_pid, hello = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    report = {"uid": os.getuid(), "opened": []}
    fds = f"/proc/{server_pid}/fd"
    for fd in os.listdir(fds) if os.access(fds, os.R_OK) else []:
        try:
            os.close(os.open(f"/proc/{server_pid}/fd/{fd}", os.O_RDWR))
            report["opened"].append(fd)
        except OSError:
            pass
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(bytes.fromhex(hello))
    data = b""
    while len(data) < 8 or len(data) < 8 + int.from_bytes(data[:4], "little") % 2**31:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    report["reply"] = data.hex()
    print(json.dumps(report), flush=True)
    sock.close()
""")


@needs_root
@pytest.mark.skipif(SYSTEM_PYTHON is None, reason="needs the system's python3 for user nobody")
def test_another_user_cannot_make_the_server_map_a_victims_region(
        spawn: Callable[..., ServerProcess], shm_names: list[str]) -> None:
    server = spawn("CartPole-v1")
    victim = RemoteEnv(server.address, timeout=10)  # a session of the server's own user
    victim.reset(seed=0)
    size = 1 << 20
    name, fd = own_file(size)  # what a root client's region looked like, mode 0600
    os.close(fd)
    shm_names.append(name)
    hello = {"rlmesh": 1, "client": "attacker", "capabilities": ["shm"],
             "shm": {"name": name, "size": size, "host": boot_id(), "pidns": pid_namespace()}}
    header, _, body_len = Encoder().encode([OP_HELLO, 0, hello])
    frame = len(header).to_bytes(4, "little") + body_len.to_bytes(4, "little") + header
    host, port = split(server.address)
    result = subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
         str(SYSTEM_PYTHON), "-I", "-c", ATTACKER_SCRIPT, host, str(port), str(server.pid),
         frame.hex()], capture_output=True, timeout=30, cwd="/")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report["uid"] != 0
    assert report["opened"] == [], "another user opened the server's descriptors"
    raw = bytes.fromhex(report["reply"])
    reply = Decoder().decode(raw[8 : 8 + (int.from_bytes(raw[:4], "little") & 0x7FFFFFFF)],
                             None)
    assert reply[0] == 0, reply
    assert reply[2].get("shm") is not True, "the server mapped a file another user named"
    assert not any(name in line for line in region_maps(server.pid))
    victim.step(victim.action_space.sample())
    victim.close()


# == D16: nothing is left behind ==============================================================


def test_nothing_is_left_in_dev_shm_when_both_sides_die_mid_handshake(
        spawn: Callable[..., ServerProcess]) -> None:
    server = spawn("CartPole-v1")
    os.kill(server.pid, signal.SIGSTOP)  # the client's HELLO will wait for an answer
    client = subprocess.Popen(
        [sys.executable, "-c", "import sys; from rlmesh.numpy import RemoteEnv; "
         "RemoteEnv(sys.argv[1], timeout=30)", server.address], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _has_connected(client.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # (the HELLO is sent right after the connect)
        client.kill()
        client.wait(10)
        os.kill(server.pid, signal.SIGKILL)
        os.kill(server.pid, signal.SIGCONT)
        server.process.wait(10)
        left = [n for n in os.listdir("/dev/shm") if n.startswith(f"rlmesh-{client.pid}-")]
        assert left == [], f"left in /dev/shm: {left}"
    finally:
        kill_stragglers([client.pid])
        if alive(server.pid):
            os.kill(server.pid, signal.SIGCONT)


def _has_connected(pid: int) -> bool:
    """Whether process ``pid`` holds a socket."""
    with contextlib.suppress(OSError):
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    return False


# == a hostile server cannot make the client write into its files ============================


def test_a_client_attaches_nothing_but_a_sealed_rlmesh_region(tmp_path: Any) -> None:
    """A server that offers some other descriptor of its own gets ``attached: False``."""
    victim = tmp_path / "precious"
    victim.write_bytes(b"keep me" * 1000)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "s.sock"))
    listener.listen()
    fd = os.open(victim, os.O_RDWR)
    seen: dict[str, Any] = {}

    def fake_server() -> None:
        sock, _ = listener.accept()
        conn = Connection(sock, 1 << 20)
        conn.set_timeout(10)
        Decoder().decode(*conn.recv())
        contract = {"rlmesh": 1, "kind": "env", "session": 1, "max_message_bytes": 1 << 20,
                    "observation_space": {"type": "Discrete", "n": 2, "start": 0,
                                          "dtype": "<i8"},
                    "action_space": {"type": "Discrete", "n": 2, "start": 0, "dtype": "<i8"},
                    "num_envs": 1, "render_mode": None, "metadata": {}, "spec": None,
                    "capabilities": [], "auth": None, "shm_link": True,
                    "shm": {"pid": os.getpid(), "fd": fd, "size": 7000}}
        conn.send(*Encoder().encode([0, 0, contract]))
        seen["answer"] = Decoder().decode(*conn.recv())
        conn.close()

    thread = threading.Thread(target=fake_server, daemon=True)
    thread.start()
    try:
        env = RemoteEnv(f"unix://{tmp_path}/s.sock", timeout=10)
        assert env.contract["shm"] is False
        env._channel.abandon()
        thread.join(10)
        assert seen["answer"] == [OP_REGION, 0, {"attached": False}]
        assert victim.read_bytes() == b"keep me" * 1000
    finally:
        os.close(fd)
        listener.close()


def test_the_server_region_is_a_sealed_memfd(spawn: Callable[..., ServerProcess]) -> None:
    server = spawn("CartPole-v1")
    with RemoteEnv(server.address, timeout=10) as env:
        env.reset(seed=0)
        (line,) = region_maps(server.pid)
        assert "/memfd:rlmesh-region" in line and "/dev/shm" not in line
        region = env._channel._conn.shm
        assert isinstance(region, shm.ShmRegion)
    deadline = time.monotonic() + 5
    while region_maps(server.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert region_maps(server.pid) == [], "the region outlived its session"


# == the REGION exchange, hostile ===============================================================


def _offered(address: str) -> tuple[Connection, dict[str, Any]]:
    """A raw connection whose HELLO got a region offer; returns it and the offer."""
    sock = socket.create_connection(split(address), timeout=10)
    conn = Connection(sock, 1 << 24)
    conn.set_timeout(10)
    hello = {"rlmesh": 1, "client": "fuzz", "capabilities": ["shm", "shm-link"],
             "shm": {"host": boot_id(), "pidns": pid_namespace()}}
    reply = exchange(conn, [OP_HELLO, 0, hello])
    assert reply[0] == 0 and isinstance(reply[2]["shm"], dict), reply
    return conn, reply[2]["shm"]


@pytest.mark.parametrize("case", ["step instead", "garbage answer", "not attached"])
def test_the_region_exchange_refuses_or_falls_back_and_others_go_on(
        spawn: Callable[..., ServerProcess], case: str) -> None:
    server = spawn("CartPole-v1")
    conn, _ = _offered(server.address)
    try:
        if case == "step instead":  # anything but REGION after an offer: fatal
            reply = exchange(conn, [2, 1, 0])
            assert reply[0] == 1 and reply[2]["code"] == "protocol_error", reply
            assert reply[2]["fatal"] is True
        else:  # REGION that does not say attached=True: the session stays on the socket
            answer = {"attached": "yes"} if case == "garbage answer" else {"attached": False}
            conn.send(*Encoder().encode([OP_REGION, 0, answer]))
            reply = exchange(conn, [OP_PING, 1, "still here"])
            assert reply[0] == 0 and reply[2] == "still here", reply
        assert len(region_maps(server.pid)) <= 1  # (the refused region is gone or going)
        still_serves(server.address)
    finally:
        conn.close()
