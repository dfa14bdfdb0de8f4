"""The dashboard's collector and numbers, and the frame budget the runners honour."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh.viewer.board import Board
from rlmesh.viewer.dashboard import Dashboard
from rlmesh.viewer.stats import running_band, summary_stats
from tests.support.painted import painted_cartpole
from tests.viewer.dashboards import get, state


def test_summary_stats_is_the_normal_95_interval() -> None:
    values = [3.0, 7.0, 1.0, 9.5, 4.25]
    stats = summary_stats(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values))
    assert stats["n"] == 5
    assert stats["mean"] == pytest.approx(statistics.fmean(values))
    assert stats["ci95"] == pytest.approx(half)
    assert (stats["lo"], stats["hi"]) == pytest.approx((stats["mean"] - half, stats["mean"] + half))
    assert summary_stats([]) == {"n": 0, "mean": None, "sd": None, "ci95": None, "lo": None,
                                 "hi": None}
    assert summary_stats([2.0])["ci95"] == 0.0


def test_running_band_walks_seeds_in_order() -> None:
    rng = np.random.default_rng(3)
    seeds = [int(s) for s in rng.permutation(30)]
    episodes = [{"index": i, "seed": s, "reward": float(rng.normal(10, 4))}
                for i, s in enumerate(seeds)]
    band = running_band(episodes)
    by_seed = sorted(episodes, key=lambda e: e["seed"])
    assert [p["x"] for p in band] == [float(e["seed"]) for e in by_seed]
    for n in (1, 2, 7, 30):
        expected = summary_stats([e["reward"] for e in by_seed[:n]])
        point = band[n - 1]
        assert point["mean"] == pytest.approx(expected["mean"])
        assert (point["lo"], point["hi"]) == pytest.approx((expected["lo"], expected["hi"]))
    # unseeded episodes sit at their index
    assert [p["x"] for p in running_band([{"index": 4, "seed": None, "reward": 1.0}])] == [4.0]


def test_board_follows_episodes_events_and_replays() -> None:
    board = Board(fps=1e-6)  # one frame per tile, ever: no clock in this test
    board.begin(["a:1", "b:2"], planned=3)
    board.episode_start(0, 10, "a:1")
    board.episode_start(1, 11, "b:2")
    for step in (1, 2, 3):
        board.step(0, step, 1.5)
    board.step(1, 1, -2.0)
    tiles = {t["endpoint"]: t for t in board.state()["tiles"]}
    assert tiles["a:1"] | {"frame": 0} == {
        "slot": 0, "endpoint": "a:1", "status": "playing", "episode": 0, "seed": 10,
        "step": 3, "return": 4.5, "finished": 0, "frame": 0}
    assert (tiles["b:2"]["step"], tiles["b:2"]["return"]) == (1, -2.0)

    board.event({"kind": "endpoint_failed", "endpoint": "b:2", "episode": 1,
                 "message": "gone", "time": 1.0, "extra": object()})
    board.episode_start(1, 11, "a:1")  # episode 1 played again elsewhere: a replay
    board.episode_end({"index": 1, "seed": 11, "reward": 5.0, "steps": 4, "success": None,
                       "endpoint": "a:1", "attempts": 2})
    current = board.state()
    tiles = {t["endpoint"]: t for t in current["tiles"]}
    assert tiles["b:2"]["status"] == "failed" and tiles["b:2"]["episode"] is None
    assert tiles["a:1"]["finished"] == 1 and tiles["a:1"]["episode"] == 0
    kinds = [e["kind"] for e in current["events"]]
    assert kinds == ["endpoint_failed", "replay", "episode"]
    assert current["events"][1]["episode"] == 1 and "attempt 2" in current["events"][1]["message"]
    assert current["episodes"] == [{"index": 1, "seed": 11, "reward": 5.0, "steps": 4,
                                    "success": None, "endpoint": "a:1", "attempts": 2}]
    assert current["summary"] is None and not board.ended.is_set()

    board.end({"num_episodes": 1, "planned": 3}, [5.0])
    final = board.state()
    assert final["summary"]["stats"]["mean"] == 5.0 and board.ended.is_set()
    assert {t["status"] for t in final["tiles"]} == {"done", "failed"}
    json.dumps(final, allow_nan=False)


def test_frame_budget_and_sources() -> None:
    board = Board(fps=1e-6)
    board.begin(["r:1", "n:1", "o:1"], planned=3)
    frame = np.zeros((20, 30, 3), np.uint8)
    board.episode_start(0, 0, "r:1")
    assert board.wants_frame(0) and not board.wants_frame(0)  # one, then the budget says no
    board.frame(0, frame)
    assert board.tile(0) is not None and board.tile(0).frame.version == 1  # type: ignore[union-attr]

    board.episode_start(1, 1, "n:1")
    assert board.wants_frame(1)
    board.frame(1, None)  # this endpoint renders nothing: never asked again
    board.tile(1).last_frame = float("-inf")  # type: ignore[union-attr]
    assert not board.wants_frame(1)

    board.episode_start(2, 2, "o:1", observation=np.full((16, 16), 0.5, np.float32))
    tile = board.tile(2)
    assert tile is not None and tile.frame.version == 1 and tile.renders is False
    _, shown = tile.frame.get()
    assert shown is not None and shown.shape == (16, 16, 3) and shown.dtype == np.uint8
    assert not board.wants_frame(2)  # images come from observations: no render()
    assert board.wants_frame(99) is False and board.tile(7) is None


def test_state_json_is_strict_json_and_bad_queries_are_400() -> None:
    with Dashboard() as dashboard:
        assert dashboard.url == f"http://127.0.0.1:{dashboard.port}/"
        dashboard.board.begin(["x:1"], planned=1)
        dashboard.board.episode_end({"index": 0, "seed": 0, "reward": float("nan"), "steps": 1,
                                     "endpoint": "x:1"})
        current = state(dashboard.url)
        assert current["episodes"][0]["reward"] is None and current["stats"]["n"] == 1
        assert get(dashboard.url + "frame.png?endpoint=zz")[0] == 400
        assert get(dashboard.url + "frame.png?endpoint=0")[0] == 404  # no frame yet
        assert get(dashboard.url + "state.json?wait=soon")[0] == 400
        assert get(dashboard.url + "nothing-here")[0] == 404
        page = get(dashboard.url)
        assert page[0] == 200 and page[2]["Content-Type"].startswith("text/html")
        for asset in (b"/dashboard.js", b"/dashboard.css"):
            assert asset in page[1]
            status, body, _ = get(dashboard.url + asset.decode()[1:])
            assert status == 200 and body
        assert b"http" not in get(dashboard.url + "dashboard.js")[1].replace(
            b"http://www.w3.org/2000/svg", b"")  # nothing fetched from elsewhere


class _Counting(gym.Wrapper[Any, Any, Any, Any]):
    """Counts ``render()`` calls."""

    def __init__(self) -> None:
        super().__init__(painted_cartpole())
        self.renders = 0

    def render(self) -> Any:
        self.renders += 1
        return super().render()


class _EveryThird(rlmesh.Hooks):
    def __init__(self) -> None:
        self.asked = self.frames = 0

    def wants_frame(self, index: int) -> bool:
        self.asked += 1
        return self.asked % 3 == 0

    def on_frame(self, index: int, frame: Any) -> None:
        self.frames += 1


class _Every(rlmesh.Hooks):
    def __init__(self) -> None:
        self.frames = 0

    def on_frame(self, index: int, frame: Any) -> None:
        self.frames += 1


def test_runners_render_only_the_frames_a_budgeted_hook_wants() -> None:
    env, hook = _Counting(), _EveryThird()
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0, 1], hooks=hook)
    asked = result.total_steps + result.num_episodes  # after each reset and each step
    assert hook.asked == asked and env.renders == hook.frames == asked // 3

    env, budgeted, every = _Counting(), _EveryThird(), _Every()
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[0], hooks=[budgeted, every])
    assert env.renders == every.frames == result.total_steps + 1  # a hook wants them all
