"""``rlmesh describe`` and ``rlmesh ping``: readable spaces, bounded size, tokens honoured."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.deps import need
from tests.support.processes import rlmesh_cmd

pytestmark = pytest.mark.timeout(120)

TOKEN = "describe-test-token"


def describe(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    result = rlmesh_cmd("describe", *args, env=env)
    return result.returncode, json.loads(result.stdout) if result.stdout else None, \
        result.stderr


def without_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RLMESH_TOKEN"}


def test_box_spaces_carry_shape_and_dtype(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1")
    code, contract, _ = describe(server.address)
    assert code == 0
    box = contract["observation_space"]
    assert box["type"] == "Box" and box["shape"] == [4] and box["dtype"] == "float32"
    assert box["low"][1] == "-inf" and box["high"][0] == pytest.approx(4.8)
    assert contract["action_space"] == {"type": "Discrete", "n": 2, "start": 0,
                                        "dtype": "<i8"}
    assert contract["spaces"]["action_space"] == "Discrete(2)"


def test_an_image_endpoint_describes_itself_briefly(spawn: Callable[..., Any]) -> None:
    server = spawn("rlmesh.envs:ImageEnv", kwargs={"height": 210, "width": 160})
    result = rlmesh_cmd("describe", server.address)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) < 10_000
    box = json.loads(result.stdout)["observation_space"]
    assert box == {"type": "Box", "shape": [210, 160, 3], "dtype": "uint8", "low": 0,
                   "high": 255}  # uniform bounds as scalars; all-bounded masks implied


def test_an_atari_endpoint_describes_itself_in_under_10_kb(spawn: Callable[..., Any]) -> None:
    need("ale_py")
    server = spawn("gymnasium:make", kwargs={"id": "ale_py:ALE/Pong-v5"})
    result = rlmesh_cmd("describe", server.address)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) < 10_000, len(result.stdout)
    contract = json.loads(result.stdout)
    assert contract["observation_space"]["shape"] == [210, 160, 3]
    assert contract["spec"]["id"] == "ALE/Pong-v5"


def test_varied_large_bounds_are_summarised() -> None:
    import numpy as np

    from rlmesh.cli.contract_json import space_json
    from rlmesh.spaces import Box
    from rlmesh.wire.schema import space_to_schema

    low = np.arange(1000, dtype=np.float64).reshape(10, 100)
    described = space_json(space_to_schema(Box(low, low + 1, dtype=np.float64)))
    assert described["low"]["min"] == 0.0 and described["low"]["max"] == 999.0
    assert described["low"]["elements"] == 1000
    assert len(json.dumps(described)) < 500


def test_a_token_endpoint_describes_itself_only_with_the_token(
        spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1", env={**without_token(), "RLMESH_TOKEN": TOKEN})
    code, partial, stderr = describe(server.address, env=without_token())
    assert code == 1  # a partial answer
    assert "kind" not in partial and partial["server"]["name"] == "rlmesh"
    assert "requires a token" in stderr and "--token" in stderr
    code, full, _ = describe(server.address, "--token", TOKEN, env=without_token())
    assert code == 0 and full["kind"] == "env" and full["spec"]["id"] == "CartPole-v1"
    code, full, _ = describe(server.address, env={**without_token(), "RLMESH_TOKEN": TOKEN})
    assert code == 0 and full["kind"] == "env"
    code, _, stderr = describe(server.address, "--token", "wrong", env=without_token())
    assert code == 1 and "token" in stderr


def test_ping_honours_the_token(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1", env={**without_token(), "RLMESH_TOKEN": TOKEN})
    bare = rlmesh_cmd("ping", server.address, env=without_token())
    assert bare.returncode == 0 and "authentication required" in bare.stdout
    full = rlmesh_cmd("ping", server.address, "--token", TOKEN, env=without_token())
    assert full.returncode == 0 and "CartPole-v1" in full.stdout, full.stderr
    wrong = rlmesh_cmd("ping", server.address, "--token", "wrong", env=without_token())
    assert wrong.returncode == 1 and "token" in wrong.stderr
