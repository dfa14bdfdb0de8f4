"""The dashboard during a real 4-endpoint evaluation: read over HTTP while the run plays.

Four ``rlmesh serve`` children serve a slow CartPole that renders ``rgb_array`` frames; one
is SIGKILLed mid-run, and the page must show its failure and the replay of its episode.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

import rlmesh
from rlmesh.testing import ServerProcess
from rlmesh.viewer.dashboard import Dashboard
from tests.support.slow_env import slow_env_environment
from tests.viewer.dashboards import Background, get, spawn_rendering, state, wait_state

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def child_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return slow_env_environment(tmp_path_factory.mktemp("slow-env"))


class KillOneAfter(rlmesh.Hooks):
    """Once ``after`` episodes ended, SIGKILL the endpoint that starts the next one."""

    def __init__(self, servers: list[ServerProcess], after: int) -> None:
        self.by_address = {s.address: s for s in servers}
        self.after, self.ended = after, 0
        self.killed: tuple[str, int] | None = None

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        if self.ended >= self.after and self.killed is None and endpoint in self.by_address:
            self.killed = (endpoint, index)
            threading.Thread(target=os.kill, daemon=True, args=(
                self.by_address[endpoint].pid, signal.SIGKILL)).start()

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.ended += 1


def test_a_four_endpoint_run_live_over_http(spawn: Callable[..., ServerProcess],
                                            child_env: dict[str, str]) -> None:
    servers = spawn_rendering(spawn, child_env, 4)
    addresses = [s.address for s in servers]
    killer = KillOneAfter(servers, after=6)
    with Dashboard(fps=10) as dashboard:
        base = dashboard.url
        run = Background(rlmesh.RANDOM_SAMPLE, addresses, episodes=32, seed=100,
                         hooks=killer, view=dashboard)
        first = wait_state(base, lambda s: len(s["tiles"]) == 4
                           and all(t["frame"] >= 1 for t in s["tiles"]))
        assert [t["endpoint"] for t in first["tiles"]] == addresses
        assert first["planned"] == 32

        # frames change: a newer frame of a tile is another image
        status, png, headers = get(base + "frame.png?endpoint=0")
        assert status == 200 and png.startswith(b"\x89PNG\r\n\x1a\n")
        version = int(headers["X-Frame-Version"])
        wait_state(base, lambda s: s["tiles"][0]["frame"] > version or s["summary"] is not None)
        status, newer, headers = get(base + "frame.png?endpoint=0")
        assert status == 200 and int(headers["X-Frame-Version"]) > version and newer != png

        # returns accumulate on the tiles while episodes play
        playing = wait_state(base, lambda s: any(t["step"] >= 3 for t in s["tiles"]))
        tile = max(playing["tiles"], key=lambda t: t["step"])
        assert tile["return"] == pytest.approx(tile["step"])  # CartPole: +1 a step

        # the failure and the replay show as they happen
        live = wait_state(base, lambda s: any(e["kind"] == "replay" for e in s["events"]))
        result = run.result()
    assert killer.killed is not None
    killed, index = killer.killed
    failures = [e for e in live["events"] if e["kind"] == "endpoint_failed"]
    assert failures and failures[0]["endpoint"] == killed
    replays = [e for e in live["events"] if e["kind"] == "replay"]
    assert replays[0]["episode"] == index and replays[0]["endpoint"] != killed
    assert any(t["endpoint"] == killed and t["status"] == "failed" for t in live["tiles"])

    # the final state is the run's result
    assert result.complete and result.num_episodes == 32
    final = dashboard.board.state()
    assert final["summary"]["num_episodes"] == 32
    assert final["summary"]["stats"]["mean"] == pytest.approx(result.mean_reward)
    assert sorted((e["index"], e["reward"]) for e in final["episodes"]) == [
        (e.index, e.reward) for e in result.episodes]
    assert {e["kind"] for e in result.events} <= {e["kind"] for e in final["events"]}
    assert len(final["band"]) == 32 and final["band"][-1]["mean"] == pytest.approx(
        result.mean_reward)


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_view_http_serves_for_the_length_of_the_run(serve: Callable[..., Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import gymnasium as gym

    server = serve(lambda: gym.make("CartPole-v1"))
    with pytest.warns(rlmesh.RLMeshWarning, match="without a render mode"):
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [server.address], episodes=2, seed=0,
                                 view="http")
    assert result.complete
    found = re.search(r"watch the evaluation at (http://127\.0\.0\.1:(\d+)/)",
                      capsys.readouterr().err)
    assert found, "evaluate(view='http') did not print its address"
    with pytest.raises(OSError):  # closed with the run: nothing listens there any more
        state(found.group(1))


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_a_dashboard_of_ones_own_stays_after_the_run(serve: Callable[..., Any]) -> None:
    import gymnasium as gym

    server = serve(lambda: gym.make("CartPole-v1"))
    with Dashboard() as dashboard, pytest.warns(rlmesh.RLMeshWarning, match="render mode"):
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [server.address], episodes=3, seed=5,
                                 view=dashboard)
        final = state(dashboard.url)
        assert final["summary"]["num_episodes"] == result.num_episodes == 3
        assert final["summary"]["complete"] is True
        assert [e["seed"] for e in sorted(final["episodes"], key=lambda e: e["index"])] == [
            5, 6, 7]
