"""``rlmesh.RunResult`` and ``EpisodeResult``: statistics, JSON, files, by endpoint."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import rlmesh
import rlmesh.numpy
from tests.support.runs import (
    SuccessEnv,
    cartpole,
)

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# == 9. RunResult =============================================================================


def run_with_everything(serve: Any) -> rlmesh.RunResult:
    """A remote run with success flags, seeds, a limit, an endpoint, and events added."""
    address = serve(lambda: SuccessEnv("is_success")).address
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[0, 1, 2, 3, None],
                        max_episode_steps=4)
    result.events.append({"kind": "endpoint_failed", "endpoint": address,
                          "message": "ConnectionLostError: gone", "episode": 2, "time": 1.5})
    result.events.append({"kind": "incomplete", "endpoint": None, "message": "x",
                          "episode": None, "time": 2.0})
    return result


def test_run_result_dict_and_json_round_trip(serve: Any) -> None:
    result = run_with_everything(serve)
    assert [e.truncated for e in result.episodes] == [False, False, True, False, False]
    data = result.to_dict()
    assert data["format"] == "rlmesh.run/1"
    assert data["summary"]["num_episodes"] == 5 and data["summary"]["events"] == 2
    back = rlmesh.RunResult.from_dict(json.loads(json.dumps(data)))
    assert back == result
    assert back.to_dict() == data
    assert [type(e) for e in back.episodes] == [rlmesh.EpisodeResult] * 5
    for mine, theirs in zip(back.episodes, result.episodes, strict=True):
        assert mine.to_dict() == theirs.to_dict()
        assert type(mine.reward) is float and type(mine.steps) is int
    interrupted = rlmesh.RunResult(episodes=result.episodes[:2], settings={"a": [1, None]},
                                   events=result.events, interrupted=True, planned=5)
    again = rlmesh.RunResult.from_dict(json.loads(json.dumps(interrupted.to_dict())))
    assert again == interrupted and not again.complete and again.planned == 5
    # EpisodeResult ignores keys it does not know (a newer writer's)
    one = rlmesh.EpisodeResult.from_dict({**result.episodes[0].to_dict(), "extra": 1})
    assert one == result.episodes[0]


def test_run_result_save_and_load(serve: Any, tmp_path: Any) -> None:
    result = run_with_everything(serve)
    path = tmp_path / "run.json"
    path.write_text("old contents")
    result.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left
    assert json.loads(path.read_text())["format"] == "rlmesh.run/1"
    loaded = rlmesh.RunResult.load(path)
    assert loaded == result
    assert loaded.events == result.events and loaded.settings == result.settings
    loaded.save(str(path))  # a str path too; saving the loaded run changes nothing
    assert rlmesh.RunResult.load(str(path)) == result


@pytest.mark.parametrize("data", [
    {}, {"format": "rlmesh.run/2", "episodes": []}, {"episodes": [], "settings": {}},
    [], "rlmesh.run/1", None, {"format": None},
], ids=["empty", "other-version", "no-format", "list", "str", "none", "null-format"])
def test_from_dict_rejects_foreign_data(data: Any, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="not an rlmesh run"):
        rlmesh.RunResult.from_dict(data)
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not an rlmesh run"):
        rlmesh.RunResult.load(path)


def episode(index: int, reward: float, steps: int = 10, success: bool | None = None,
            endpoint: str | None = None) -> rlmesh.EpisodeResult:
    return rlmesh.EpisodeResult(index, index, steps, reward, True, False, success, 0.1,
                                endpoint)


def test_run_result_statistics() -> None:
    result = rlmesh.RunResult(episodes=[
        episode(0, 1.0, 10, True), episode(1, 2.0, 20, False), episode(2, 3.0, 30, None),
        episode(3, 6.0, 40, True)], planned=4)
    assert result.num_episodes == 4 and result.complete
    assert result.rewards == [1.0, 2.0, 3.0, 6.0]
    assert result.mean_reward == 3.0
    assert result.std_reward == pytest.approx(math.sqrt((4 + 1 + 0 + 9) / 4))
    assert result.mean_steps == 25.0 and result.total_steps == 100
    assert result.success_rate == pytest.approx(2 / 3)  # among those that report
    summary = result.summary()
    assert summary == {"num_episodes": 4, "planned": 4, "mean_reward": 3.0,
                       "std_reward": result.std_reward, "mean_steps": 25.0,
                       "success_rate": result.success_rate, "total_steps": 100,
                       "interrupted": False, "events": 0}
    empty = rlmesh.RunResult(planned=3)
    assert empty.num_episodes == 0 and not empty.complete
    assert math.isnan(empty.mean_reward) and math.isnan(empty.std_reward)
    assert math.isnan(empty.mean_steps)
    assert empty.success_rate is None and empty.total_steps == 0
    assert empty.summary()["mean_reward"] is None  # JSON has no nan
    json.dumps(empty.to_dict(), allow_nan=False)
    assert rlmesh.RunResult.from_dict(empty.to_dict()) == empty
    assert rlmesh.RunResult(episodes=[episode(0, 5.0)]).std_reward == 0.0
    none_known = rlmesh.RunResult(episodes=[episode(0, 1.0), episode(1, 1.0)])
    assert none_known.success_rate is None
    assert rlmesh.RunResult(episodes=[episode(0, 1.0, success=False)]).success_rate == 0.0


def test_run_result_by_endpoint() -> None:
    episodes = [episode(0, 1.0, endpoint="a:1"), episode(1, 2.0, endpoint="b:2"),
                episode(2, 3.0), episode(3, 4.0, endpoint="a:1"), episode(4, 5.0)]
    groups = rlmesh.RunResult(episodes=episodes, planned=5).by_endpoint()
    assert list(groups) == ["a:1", "b:2", "local"]
    assert groups == {"a:1": [episodes[0], episodes[3]], "b:2": [episodes[1]],
                      "local": [episodes[2], episodes[4]]}
    assert rlmesh.RunResult().by_endpoint() == {}


def test_real_run_by_endpoint(serve: Any, closing: Any) -> None:
    local = rlmesh.run(rlmesh.RANDOM_SAMPLE, closing(cartpole()), seeds=[1, 2])
    assert list(local.by_endpoint()) == ["local"]
    address = serve(cartpole).address
    remote = rlmesh.run(rlmesh.RANDOM_SAMPLE, address, seeds=[1, 2])
    assert remote.by_endpoint() == {address: remote.episodes}
