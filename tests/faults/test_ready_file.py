"""``--ready-file`` never follows a symlink planted at its temporary name (attack review D13).

``rlmesh serve --ready-file PATH`` wrote the address to ``PATH.tmp<pid>`` with a plain
``open`` and renamed it over ``PATH``. Anyone who could write to PATH's directory could plant
symlinks at those names for a range of pids, and the server (often root) truncated and
overwrote the symlinks' targets. Now the temporary file is created exclusively under an
unpredictable name (``tempfile.mkstemp``) before it replaces ``PATH``.

The server is a real ``rlmesh serve``: a small launcher learns its pid first (it ``exec``s
the server in place once the symlink is planted, so the pid the attacker guesses is right).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmesh.numpy import RemoteEnv
from tests.support.processes import stop_child

LAUNCHER = """
import os, sys, time
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.01)
os.execv(sys.executable, [sys.executable, "-m", "rlmesh", *sys.argv[2:]])
"""


def _other_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("planting a symlink as another user needs root (CI runs as root); "
                    "the same-user case below runs anyway")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to plant the symlink as")
    return "nobody"


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory everyone may write to (under /tmp: the other user can reach it)."""
    directory = Path(tempfile.mkdtemp(prefix="rlmesh-shared-"))
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("planter", ["another user", "the same user"])
def test_ready_file_does_not_follow_a_planted_symlink(shared: Path, tmp_path: Path,
                                                      planter: str) -> None:
    user = _other_user() if planter == "another user" else None
    victim = tmp_path / "victim"  # a file of the server's user that the attacker aims at
    victim.write_text("precious\n")
    ready, go = shared / "ready", tmp_path / "go"
    child = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(go), "serve", "CartPole-v1", "--address",
         "127.0.0.1:0", "--ready-file", str(ready)],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The old temporary name, as the attacker predicts it from the server's pid.
        link = shared / f"ready.tmp{child.pid}"
        subprocess.run(["ln", "-s", str(victim), str(link)], check=True, user=user, timeout=30)
        assert link.is_symlink() and link.lstat().st_uid == (65534 if user else os.geteuid())
        go.touch()
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the server did not write its ready file"
            time.sleep(0.02)
        # Was: the victim now held the server's address, and ready was the planted symlink.
        assert victim.read_text() == "precious\n"
        assert not ready.is_symlink()
        address = ready.read_text().strip()
        assert ready.stat().st_mode & 0o777 == 0o666 & ~_umask()
        with RemoteEnv(address, timeout=10) as env:  # and it is the right address
            env.reset(seed=0)
        assert link.is_symlink()  # left alone
        assert sorted(p.name for p in shared.iterdir()) == sorted(["ready", link.name])
    finally:
        stop_child(child)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
