"""A model endpoint bounds what one PREDICT_BATCH may cost (attack review D12).

A served model ran ``predict`` once per lane of whatever batch arrived: one request of
millions of lanes held a thread and the GIL for seconds, and was not checked against the
model's spaces. Now a batch of more than ``max_batch`` lanes (65,536 by default; ``rlmesh
serve-model --max-batch``) or of lanes of the wrong shape is refused with ``ProtocolError``
before the model sees it, and the session and the server go on.

The server is a child ``rlmesh serve-model``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import rlmesh
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from tests.support.processes import stop_child

POLICIES = textwrap.dedent('''
    import numpy as np
    from gymnasium import spaces
    import rlmesh.numpy


    class Lean(rlmesh.numpy.Model):
        """CartPole-like: four floats in, the sign of the first one out."""

        def __init__(self):
            super().__init__(name="lean")
            self.observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
            self.action_space = spaces.Discrete(2)

        def predict(self, observation):
            return int(observation[0] > 0)
''')


@pytest.fixture
def serve_model(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``address = serve_model(*args)``: ``rlmesh serve-model policies:Lean ARGS`` in a child."""
    (tmp_path / "policies.py").write_text(POLICIES)
    children: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        ready = tmp_path / f"ready{len(children)}"
        child = subprocess.Popen(
            [sys.executable, "-m", "rlmesh", "serve-model", "policies:Lean", "--address",
             "127.0.0.1:0", "--ready-file", str(ready), *args],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        children.append(child)
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the model server did not start"
            time.sleep(0.02)
        return ready.read_text().strip()

    yield start
    for child in children:
        stop_child(child)


def test_an_oversized_batch_is_refused_and_everyone_goes_on(
        serve_model: Callable[..., str]) -> None:
    address = serve_model()
    with rlmesh.RemoteModel(address, timeout=30) as attacker, \
            rlmesh.RemoteModel(address, timeout=30) as other:
        start = time.monotonic()
        # Was: answered, after 100,000 predict calls (5 million lanes took seconds).
        with pytest.raises(rlmesh.ProtocolError, match="65536"):
            attacker.predict_batch(np.zeros((100_000, 4), np.float32))
        assert time.monotonic() - start < 5
        # A plain list of lanes (what a hostile client sends) counts the same.
        raw = Channel(address, timeout=30)
        try:
            with pytest.raises(rlmesh.ProtocolError, match="lanes"):
                raw.request(P.OP_PREDICT_BATCH, [0] * 70_000)
            assert raw.request(P.OP_PREDICT_BATCH, np.ones((2, 4), np.float32))[2].tolist() \
                == [1, 1]  # the session goes on
        finally:
            raw.close()
        # The limit itself is allowed, and so is everything after.
        assert len(attacker.predict_batch(np.zeros((65_536, 4), np.float32))) == 65_536
        batch = np.array([[0.5, 0, 0, 0], [-0.5, 0, 0, 0]], np.float32)
        assert np.asarray(attacker.predict_batch(batch)).tolist() == [1, 0]
        assert np.asarray(other.predict_batch(batch)).tolist() == [1, 0]


def test_a_batch_of_the_wrong_shape_is_refused(serve_model: Callable[..., str]) -> None:
    address = serve_model()
    with rlmesh.RemoteModel(address, timeout=30) as model:
        # Was: predict ran on each 5-float lane of a model that takes 4 floats.
        with pytest.raises(rlmesh.ProtocolError, match="observation space"):
            model.predict_batch(np.zeros((3, 5), np.float32))
        with pytest.raises(rlmesh.ProtocolError, match="observation space"):
            model.predict_batch(np.zeros(3, np.float32))  # no lane axis of 4-vectors
        assert np.asarray(model.predict_batch(np.ones((3, 4), np.float32))).tolist() == [1] * 3


def test_max_batch_on_the_command_line(serve_model: Callable[..., str]) -> None:
    address = serve_model("--max-batch", "16")
    with rlmesh.RemoteModel(address, timeout=30) as model:
        assert len(model.predict_batch(np.zeros((16, 4), np.float32))) == 16
        with pytest.raises(rlmesh.ProtocolError, match="limit of 16"):
            model.predict_batch(np.zeros((17, 4), np.float32))
