"""The compiled client's slot step under races, each in a child process (a crash ends it).

A hostile peer flipping the reply's form word while the client reads it (read once, so a
form that was not agreed is handed on, never used), and another thread releasing the steps
while the client copies a large observation out of the slot (everything the step still uses
is held, and it re-checks before it counts the reply). Before the mends, both ended the
process with SIGSEGV within seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlmesh.transport import shmlink
from tests.support.fastslots import require_compiled

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(not shmlink.supported(), reason="the link needs an x86-64 machine"),
    pytest.mark.timeout(120),
]


@pytest.mark.parametrize("race", ["form", "release"])
def test_the_compiled_client_step_survives(race: str) -> None:
    require_compiled()
    done = subprocess.run([sys.executable, "-m", "tests.support.slot_races", race, "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    steps, handed = (int(word) for word in done.stdout.split()[1:4:2])
    assert steps > 100 and 0 < handed < steps  # (both ways were taken: the race ran)
