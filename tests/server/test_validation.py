"""The server's action checks agree with Gymnasium's ``contains`` on every value.

``make_validator`` has short paths for Discrete, Box and MultiDiscrete spaces (the STEP hot
path); each must answer exactly what ``space.contains`` answers, and never raise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces as gs

from rlmesh.server.validation import make_validator

SPACES = [
    gs.Discrete(3),
    gs.Discrete(5, start=-2),
    gs.Box(-1.0, 1.0, (3,), np.float32),
    gs.MultiDiscrete([2] * 8),  # (a vector env's batched Discrete: uniform bounds)
    gs.MultiDiscrete(np.full((2, 3), 4)),  # (uniform, 2-D)
    gs.MultiDiscrete([3] * 100),  # (uniform, large: NumPy's min and max)
    gs.MultiDiscrete([2, 3, 4]),
    gs.MultiDiscrete([2] * 4, start=[1] * 4),
]


def candidates(space: gs.Space[Any], rng: np.random.Generator) -> list[Any]:
    """Members, near misses and values of other types, shapes and dtypes."""
    shape = space.shape or ()
    values: list[Any] = [space.sample() for _ in range(20)]
    for _ in range(20):
        member = np.asarray(space.sample())
        off = member + rng.integers(-3, 4, member.shape).astype(member.dtype)
        values.append(off if member.ndim else off.item())
    if isinstance(space, gs.MultiDiscrete):  # (the edges: the largest member, one past it)
        top = (space.start + space.nvec - 1).astype(space.dtype)
        values += [top, top + 1, space.start.astype(space.dtype) - 1]
    values += [None, "1", [0] * max(int(np.prod(shape)), 1), 1.5, True, np.int32(1),
               np.zeros(shape, np.int32), np.zeros(shape, np.float64),
               np.zeros((2, *shape), space.dtype), np.zeros(shape, space.dtype)]
    return values


@pytest.mark.parametrize("space", SPACES, ids=repr)
@pytest.mark.filterwarnings("ignore:.*Casting input x to numpy array")  # (lists, on purpose)
def test_validators_answer_as_contains(space: gs.Space[Any]) -> None:
    check = make_validator(space)
    rng = np.random.default_rng(0)
    for value in candidates(space, rng):
        try:
            expected = bool(space.contains(value))
        except Exception:
            expected = False
        got = check(value)
        assert type(got) is bool and got == expected, (space, value)
