"""One local Ray cluster on loopback for all the fleet tests (``-m ray`` selects them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.deps import need

# Ray on Linux advertises the machine's interface address; in its local-only mode it uses
# 127.0.0.1, so every byte of these tests stays on loopback. Set before Ray is imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # workers: this interpreter


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[Any]:
    """A 2-CPU local Ray cluster without dashboard, one for all these tests (10 to 30 s to
    start here), shut down after the last."""
    ray = need("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             namespace="rlmesh-tests", _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()
