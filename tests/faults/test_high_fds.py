"""Worker pools start in a process that already holds 1,100 descriptors (security review D10).

``select.select()`` cannot take a descriptor of 1,024 or more: waiting for the workers'
``READY`` line with it made ``make_vec`` and ``EnvServer(workers=N)`` raise ``ValueError`` in
a trainer with many open files or sockets. Each check runs in a child process, whose
descriptors (and limit) the test may raise without touching the test runner's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_NOFILE"),
    pytest.mark.timeout(60),
]

PRELUDE = textwrap.dedent("""
    import os, resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    assert max(held) >= 1100
""")


def run_child(body: str) -> subprocess.CompletedProcess[str]:
    """Run the prelude then ``body`` in a fresh interpreter; stdout and stderr as text."""
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=50)


def test_make_vec_in_a_process_with_1100_descriptors() -> None:
    result = run_child("""
        import numpy as np
        import rlmesh
        env = rlmesh.make_vec("CartPole-v1", 2, num_workers=2, start_timeout=30, timeout=10)
        try:
            obs, _ = env.reset(seed=1)
            obs, *_ = env.step(np.zeros(2, np.int64))
            assert obs.shape == (2, 4)
        finally:
            env.close()
        print("served")
    """)
    assert result.returncode == 0 and "served" in result.stdout, result.stderr[-2000:]


def test_env_server_workers_in_a_process_with_1100_descriptors() -> None:
    result = run_child("""
        from rlmesh import EnvServer
        server = EnvServer("CartPole-v1", "127.0.0.1:0", workers=3)
        try:
            pids = server.worker_pids
            assert len(pids) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
        finally:
            server.shutdown()
        print("started")
    """)
    assert result.returncode == 0 and "started" in result.stdout, result.stderr[-2000:]
