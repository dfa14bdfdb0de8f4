"""``python -m rlmesh.serve`` and ``rlmesh describe/serve module:Factory`` as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import rlmesh
from rlmesh.params import PARAM_METADATA_KEY
from rlmesh.server.sources import TAGS_METADATA_KEY
from tests.authoring.factories import Cart
from tests.support.net import free_port, wait_until_listening
from tests.support.processes import exit_code_or_stacks, kill_group, rlmesh_cmd

ROOT = Path(__file__).resolve().parents[2]
CART = "tests.authoring.factories:Cart"


class Entrypoint:
    """A ``python -m rlmesh.serve`` child on a free loopback port."""

    def __init__(self, tmp_path: Path, *args: str, **environ: str) -> None:
        self.port = free_port()
        self.built = tmp_path / "built"
        self.log = tmp_path / "serve.log"
        env = {**os.environ, "RLMESH_ADDRESS": f"127.0.0.1:{self.port}",
               "RLMESH_TEST_BUILT": str(self.built), "PYTHONFAULTHANDLER": "1", **environ}
        for name in ("RLMESH_MAKE_KWARGS", "RLMESH_NUM_ENVS", "RLMESH_FRAMEWORK"):
            if name not in environ:
                env.pop(name, None)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rlmesh.serve", *args], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def events(self) -> list[str]:
        return self.built.read_text().splitlines() if self.built.exists() else []

    def exit_code(self, timeout: float = 30) -> int:
        return exit_code_or_stacks(self.process, timeout, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def entrypoint(tmp_path: Path) -> Iterator[type]:
    started: list[Entrypoint] = []

    class Started(Entrypoint):
        def __init__(self, *args: str, **environ: str) -> None:
            super().__init__(tmp_path, *args, **environ)
            started.append(self)

    yield Started
    for child in started:
        kill_group(child.process)


@pytest.mark.timeout(90)
def test_serves_a_factory_from_env_vars_until_sigterm(entrypoint: type) -> None:
    child = entrypoint(CART, RLMESH_MAKE_KWARGS=json.dumps({"max_steps": 5, "gravity": 4}))
    wait_until_listening(child.process, child.port, child.log)
    env = rlmesh.numpy.RemoteEnv(child.address)
    try:
        metadata = env.env_contract.metadata
        assert metadata[TAGS_METADATA_KEY] == {"robot": "cart", "arms": 0}
        assert metadata[PARAM_METADATA_KEY] == {"max_steps": 5, "gravity": 4.0}
        obs, _ = env.reset(seed=0)
        assert isinstance(obs, np.ndarray) and obs.shape == (4,)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(1)
            steps, done = steps + 1, terminated or truncated
        assert steps <= 5
    finally:
        env.close()
    os.killpg(child.process.pid, signal.SIGTERM)
    assert child.exit_code() == 0, child.output()
    events = child.events()
    assert events[0] == "prepare" and events.count("prepare") == 1
    assert "make max_steps=5 gravity=4.0" in events and events[-1] == "close"


@pytest.mark.parametrize(("args", "environ", "message"), [
    ((CART,), {"RLMESH_MAKE_KWARGS": '{"max_steps": 5'}, "not valid JSON"),
    ((CART,), {"RLMESH_MAKE_KWARGS": "[5]"}, "JSON object"),
    ((CART,), {"RLMESH_MAKE_KWARGS": '{"max_steps": 7}'}, "must be one of"),
    ((CART,), {"RLMESH_MAKE_KWARGS": '{"max_stepz": 5}'}, "unknown parameter 'max_stepz'"),
    ((CART,), {"RLMESH_MAKE_KWARGS": '{"num_envs": 2}'}, "RLMESH_NUM_ENVS"),
    ((CART,), {"RLMESH_NUM_ENVS": "zero"}, "RLMESH_NUM_ENVS must be an integer"),
    ((CART,), {"RLMESH_NUM_ENVS": "0"}, "RLMESH_NUM_ENVS must be >= 1"),
    (("tests.authoring.factories:Nope",), {}, "no attribute 'Nope'"),
    (("NoSuchEnv-v0",), {}, "not a registered"),
    ((), {}, "no target"),
])
def test_bad_settings_exit_2_with_one_line_and_build_nothing(
        entrypoint: type, args: tuple[str, ...], environ: dict[str, str], message: str) -> None:
    child = entrypoint(*args, **environ)
    assert child.exit_code() == 2, child.output()
    assert message in child.output()
    assert "Traceback" not in child.output()
    assert not any(event.startswith("make") for event in child.events())


@pytest.mark.timeout(90)
def test_an_env_id_with_num_envs_serves_a_vector_env(entrypoint: type) -> None:
    child = entrypoint("--env", "CartPole-v1", RLMESH_NUM_ENVS="3")
    wait_until_listening(child.process, child.port, child.log)
    contract = rlmesh.probe(child.address, wait=10)
    assert contract["kind"] == "vector_env" and contract["num_envs"] == 3
    os.killpg(child.process.pid, signal.SIGINT)
    assert child.exit_code() == 0, child.output()


@pytest.mark.timeout(90)
def test_a_model_class_is_built_with_validated_kwargs_and_served(entrypoint: type) -> None:
    child = entrypoint("tests.authoring.factories:Greedy",
                       RLMESH_MAKE_KWARGS='{"action": 0}')
    wait_until_listening(child.process, child.port, child.log)
    with rlmesh.RemoteModel(child.address) as remote:
        assert remote.predict(np.zeros(4, dtype=np.float32)) == 0
    os.killpg(child.process.pid, signal.SIGTERM)
    assert child.exit_code() == 0, child.output()


def test_rlmesh_describe_prints_the_envelope_of_a_local_target(tmp_path: Path) -> None:
    out = tmp_path / "describe.json"
    done = rlmesh_cmd("describe", CART, "--out", str(out), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == rlmesh.describe_json(Cart)
    assert json.loads(out.read_text()) == rlmesh.describe(Cart)
    stamped = rlmesh_cmd("describe", "CartPole-v1", "--generated-at", "2026-01-01T00:00:00Z")
    assert json.loads(stamped.stdout)["generated_at"] == "2026-01-01T00:00:00Z"
    missing = rlmesh_cmd("describe", "tests.authoring.nowhere:X", cwd=ROOT)
    assert missing.returncode != 0 and "nowhere" in missing.stderr


@pytest.mark.timeout(90)
def test_rlmesh_serve_takes_a_factory_and_validates_kwargs(spawn: type) -> None:
    server = spawn(CART, kwargs={"max_steps": 10})
    env = rlmesh.numpy.RemoteEnv(server.address)
    try:
        assert env.env_contract.metadata[PARAM_METADATA_KEY] == {"max_steps": 10}
    finally:
        env.close()
    refused = rlmesh_cmd("serve", CART, "--address", "127.0.0.1:0", "--kwargs",
                         '{"max_steps": 7}', cwd=ROOT)
    assert refused.returncode != 0 and "must be one of" in refused.stderr
