"""``rlmesh.sanitize_metadata``: a mapping reduced to built-in values that always travels."""

from __future__ import annotations

from collections import namedtuple
from enum import Enum, IntEnum
from typing import Any

import numpy as np
import pytest

import rlmesh
from rlmesh.envs import CounterEnv

pytestmark = pytest.mark.timeout(60)


class Pose:
    """A rich object with no wire encoding."""

    def __str__(self) -> str:
        return "Pose(0, 0, 0)"


def test_built_in_values_pass_unchanged() -> None:
    info: dict[str, Any] = {"none": None, "flag": True, "big": 2**53 + 1, "lr": 2.0,
                            "name": "cartpole", "blob": b"\x00\xff",
                            "nested": {"a": [1, "b", {"c": False}]}}
    assert rlmesh.sanitize_metadata(info) == info


def test_containers_numpy_and_named_tuples() -> None:
    point = namedtuple("point", ["x", "y"])
    out = rlmesh.sanitize_metadata({"t": (1, (2,)), "f": np.float32(1.5), "n": np.int64(7),
                                    "a": np.arange(3, dtype=np.int32), "p": point(1, 2)})
    assert out == {"t": [1, [2]], "f": 1.5, "n": 7, "a": [0, 1, 2], "p": {"x": 1, "y": 2}}
    assert type(out["f"]) is float and type(out["n"]) is int


def test_enums_keys_and_rich_leaves() -> None:
    class Color(Enum):
        RED = "red"

    class Count(IntEnum):
        ONE = 1

    class Opaque(Enum):
        X = Pose()

    out = rlmesh.sanitize_metadata({"c": Color.RED, "n": Count.ONE, "o": Opaque.X,
                                    "pose": Pose(), 5: "five"})
    assert out == {"c": "red", "n": 1, "o": "X", "pose": "Pose(0, 0, 0)", "5": "five"}
    assert type(out["n"]) is int


def test_cycles_and_non_mappings_are_refused() -> None:
    info: dict[str, Any] = {}
    info["outer"] = {"inner": info}
    with pytest.raises(ValueError, match=r"outer\.inner"):
        rlmesh.sanitize_metadata(info)
    with pytest.raises(TypeError, match="mapping"):
        rlmesh.sanitize_metadata([("a", 1)])  # type: ignore[arg-type]
    shared = [1]
    assert rlmesh.sanitize_metadata({"a": shared, "b": shared}) == {"a": [1], "b": [1]}


class RichInfoEnv(CounterEnv):
    """Returns an info only a sanitized dict can carry unchanged."""

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        obs, _ = super().reset(seed=seed)
        return obs, rlmesh.sanitize_metadata({"pose": Pose(), "t": (1, 2), 5: "five"})


def test_a_sanitized_info_survives_a_served_reset(serve: Any, closing: Any) -> None:
    server = serve(RichInfoEnv())
    env = closing(rlmesh.RemoteEnv(server.address, connect_timeout=5, timeout=10))
    _, info = env.reset(seed=1)
    assert info == {"pose": "Pose(0, 0, 0)", "t": [1, 2], "5": "five"}
