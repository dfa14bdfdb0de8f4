"""``rlmesh.Hooks`` under ``rlmesh.run``: the order and count of every call."""

from __future__ import annotations

from typing import Any

import pytest

import rlmesh
import rlmesh.numpy
from tests.support.runs import (
    SEEDS,
    Recorder,
    angle_loop,
    angle_policy,
    cartpole,
    make_target,
    outcomes,
    random_loop,
)

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# == 5. rlmesh.Hooks ==========================================================================




@pytest.mark.parametrize("kind", ["local", "address"])
def test_hooks_order_and_counts_single_env(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    first, second = Recorder(), Recorder()
    seeds = [5, 6, 7]
    result = rlmesh.run(rlmesh.Model(angle_policy), env, seeds=seeds, hooks=[first, second])
    assert first.calls == second.calls  # both called, each with everything
    expected: list[tuple[Any, ...]] = []
    for episode, seed in zip(result.episodes, seeds, strict=True):
        expected.append(("start", episode.index, seed, endpoint))
        seen = first.observations[episode.index]
        assert len(seen) == episode.steps + 1
        for step in range(1, episode.steps + 1):
            last = step == episode.steps
            expected.append(("step", episode.index, step, angle_policy(seen[step - 1]), 1.0,
                             last and episode.terminated, last and episode.truncated))
        expected.append(("end", episode.index, episode))
    expected.append(("run_end", result))
    assert first.calls == expected
    assert first.calls[-1][1] is result
    assert [c[2] for c in first.calls if c[0] == "end"] == result.episodes
    assert outcomes(result) == angle_loop(seeds)


@pytest.mark.parametrize("kind", ["sync-vector", "vector-endpoint", "fleet"])
def test_hooks_order_and_counts_on_lanes(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    hook = Recorder()
    seeds = SEEDS[:5]
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=seeds, hooks=hook)
    assert outcomes(result) == random_loop(seeds)
    kinds = [c[0] for c in hook.calls]
    assert kinds.count("start") == kinds.count("end") == 5
    assert kinds.count("step") == result.total_steps
    assert kinds.count("run_end") == 1 and kinds[-1] == "run_end"
    for episode in result.episodes:
        mine = [c for c in hook.calls if c[0] != "run_end" and c[1] == episode.index]
        assert mine[0] == ("start", episode.index, episode.seed, endpoint)
        assert [c[2] for c in mine[1:-1]] == list(range(1, episode.steps + 1))
        assert mine[-1] == ("end", episode.index, episode)


def test_hooks_must_be_hooks(closing: Any) -> None:
    with pytest.raises(TypeError, match=r"rlmesh\.Hooks"):
        rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), hooks=[object()])  # type: ignore[list-item]


