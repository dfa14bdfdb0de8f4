"""Per-episode contexts when episodes interleave: vector env lanes, endpoint threads, batches.

The reference docs: every corner may declare ``context``; the batched corners receive a list,
one entry per row in row order, because a batch may span independent episodes; ``reset``
fires once per ended episode, naming it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.testing import spawn_server

pytestmark = pytest.mark.timeout(60)
SEEDS = [3, 5, 7, 11, 13]


class LaneRecorder(rlmesh.numpy.Model):
    """A batch corner that declares context; remembers what each row was told."""

    def __init__(self) -> None:
        super().__init__(name="lanes")
        self.rows: list[list[dict[str, Any]]] = []
        self.ended: list[str] = []

    def predict_batch(self, observations: Any, context: Any) -> Any:
        assert isinstance(context, list) and len(context) == len(observations)
        self.rows.append([dict(c, state=None) for c in context])
        for row in context:
            row["state"]["n"] = row["state"].get("n", 0) + 1
            assert row["state"]["n"] == row["predict_index"] + 1 or row["episode_id"] == ""
        return (observations[:, 2] > 0).astype(np.int64)

    def reset(self, episode_id: str = "") -> None:
        self.ended.append(episode_id)


def test_vector_lanes_get_one_context_per_row_with_their_own_episode() -> None:
    model = LaneRecorder()
    envs = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    result = rlmesh.run(model, envs, seeds=SEEDS)
    assert len(result.episodes) == len(SEEDS)
    seeds_seen: dict[str, int | None] = {}
    indices: dict[str, list[int]] = defaultdict(list)
    for rows in model.rows:
        busy = [r for r in rows if r["episode_id"]]
        assert len({r["episode_id"] for r in busy}) == len(busy), "two rows shared an episode"
        for row in busy:
            seeds_seen.setdefault(row["episode_id"], row["episode_seed"])
            assert seeds_seen[row["episode_id"]] == row["episode_seed"]
            assert row["predict_seed"] == rlmesh.predict_seed(row["episode_seed"],
                                                              row["predict_index"])
            indices[row["episode_id"]].append(row["predict_index"])
    assert sorted(s for s in seeds_seen.values()) == sorted(SEEDS)
    for episode_id, seen in indices.items():
        assert seen == list(range(len(seen))), episode_id
    # Each episode's length is its predicts (CartPole pays 1 a step).
    assert sorted(len(v) for v in indices.values()) == sorted(e.steps
                                                              for e in result.episodes)
    # reset fired once per ended episode, naming it.
    assert sorted(model.ended) == sorted(indices)


def test_threads_of_an_evaluation_never_share_an_episode_context() -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def predict(observation: Any, context: Any) -> int:
        with lock:
            seen[context["episode_id"]].append(context["predict_index"])
        return int(observation[2] > 0)

    servers = [spawn_server("CartPole-v1") for _ in range(2)]
    try:
        result = rlmesh.evaluate(rlmesh.numpy.Model(predict), [s.address for s in servers],
                                 episodes=6, seed=40)
    finally:
        for server in servers:
            server.stop()
    assert len(result.episodes) == 6 and len(seen) == 6
    for indices in seen.values():
        assert indices == list(range(len(indices)))


def test_a_batch_only_model_with_context_serves_single_observations_with_a_list_of_one() -> None:
    told: list[Any] = []

    class BatchOnly(rlmesh.numpy.Model):
        def predict_batch(self, observations: Any, context: Any) -> Any:
            told.append(context)
            return (observations[:, 2] > 0).astype(np.int64)

    rlmesh.run(BatchOnly(), gym.make("CartPole-v1"), seeds=[1])
    assert all(isinstance(c, list) and len(c) == 1 for c in told)
    assert [c[0]["predict_index"] for c in told] == list(range(len(told)))
    assert {c[0]["episode_seed"] for c in told} == {1}


def test_a_chunk_batch_corner_with_context_is_handed_the_rows_contexts() -> None:
    told: list[Any] = []

    class ChunkBatch(rlmesh.numpy.Model):
        def predict_chunk_batch(self, observations: Any, execution_horizon: int,
                                context: Any) -> Any:
            told.append((execution_horizon, [c["predict_index"] for c in context]))
            lanes = (observations[:, 2] > 0).astype(np.int64)
            return np.repeat(lanes[:, None], 4, axis=1)

    rlmesh.run(ChunkBatch(), gym.make("CartPole-v1"), seeds=[2], execution_horizon=3)
    assert told and all(h == 3 and len(rows) == 1 for h, rows in told)
    assert [rows[0] for _, rows in told] == list(range(len(told)))  # one re-plan per chunk
    envs = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    told.clear()
    rlmesh.run(ChunkBatch(), envs, seeds=[2, 4])
    assert told and all(h == 1 and len(rows) == 2 for h, rows in told)


def test_a_served_batch_corner_with_context_gets_anonymous_rows() -> None:
    told: list[Any] = []

    class Served(rlmesh.numpy.Model):
        def predict_batch(self, observations: Any, context: Any) -> Any:
            told.append([c["episode_id"] for c in context])
            return (observations[:, 2] > 0).astype(np.int64)

    server = Served().serve("127.0.0.1:0", block=False)
    try:
        with rlmesh.RemoteModel(server.address) as remote:
            envs = gym.make_vec("CartPole-v1", 3, vectorization_mode="sync")
            rlmesh.run(remote, envs, seeds=[1, 2, 3])
    finally:
        server.shutdown()
    assert told and all(rows == ["", "", ""] for rows in told)
