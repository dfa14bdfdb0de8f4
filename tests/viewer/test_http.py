"""The live viewer's web page during real runs: HUD, frames, skip, quit, sources, failures."""

from __future__ import annotations

import socket
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
from tests.support.net import free_port
from tests.support.painted import painted_cartpole
from tests.support.watching import (
    CameraEnv,
    get,
    in_background,
    png_size,
    slow_balance,
    state,
    wait_state,
)

pytestmark = pytest.mark.timeout(60)


def rendering_cartpole() -> gym.Env[Any, Any]:
    return painted_cartpole()


def test_http_viewer_shows_a_rendering_run_and_quit_keeps_the_partial_result() -> None:
    port = free_port()
    run = in_background(lambda: rlmesh.run(slow_balance, rendering_cartpole(),
                                           seeds=range(50), view=f"http:{port}"))
    first = wait_state(port, lambda s: s["frame"] >= 1 and s["step"] >= 1)
    assert first["sources"] == ["render"] and first["source"] == "render"
    assert first["fps"] == 10.0
    status, kind, page = get(port, "/")
    assert status == 200 and kind.startswith("text/html") and b"viewer.js" in page
    assert get(port, "/viewer.js")[0] == 200 and get(port, "/viewer.css")[0] == 200
    status, kind, frame = get(port, "/frame")
    assert status == 200 and kind == "image/png"
    assert png_size(frame) == (600, 400)  # CartPole's render size
    wait_state(port, lambda s: s["frame"] > first["frame"] + 1)
    later = get(port, "/frame.png")[2]
    assert later != frame  # the cart moved
    assert get(port, "/nothing")[0] == 404
    assert get(port, "/control?action=dance")[0] == 400
    assert get(port, "/control?action=quit")[0] == 200
    result = run.result(timeout=30)
    assert result.interrupted and result.planned == 50
    assert 1 <= len(result.episodes) < 50
    last = result.episodes[-1]
    assert last.truncated and not last.terminated and last.steps < 500
    with pytest.raises(OSError):  # the port is given back: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_skip_truncates_the_episode_and_the_run_goes_on() -> None:
    port = free_port()
    run = in_background(lambda: rlmesh.run(slow_balance, rendering_cartpole(), seeds=range(3),
                                           view=rlmesh.View(backend="http", port=port)))
    wait_state(port, lambda s: s["episode"] == 0 and s["step"] >= 5)
    assert get(port, "/control?action=skip")[0] == 200
    wait_state(port, lambda s: s["episode"] >= 1 and s["step"] >= 5)
    assert get(port, "/control?action=skip")[0] == 200
    result = run.result(timeout=40)
    assert not result.interrupted and len(result.episodes) == 3
    for skipped in result.episodes[:2]:
        assert skipped.truncated and not skipped.terminated and skipped.steps < 500
    assert result.episodes[2].steps == 500  # played to CartPole's time limit, not cut


@pytest.mark.parametrize("chw", [False, True])
def test_image_observations_are_shown_when_the_env_does_not_render(chw: bool) -> None:
    port = free_port()
    run = in_background(lambda: rlmesh.run(lambda obs: 0, CameraEnv(chw=chw), seeds=[0],
                                           view=f"http:{port}"))
    first = wait_state(port, lambda s: s["frame"] >= 1)
    assert first["sources"] == ["camera"] and first["source"] == "camera"
    frame = get(port, "/frame")[2]
    assert png_size(frame) == (24, 24)
    wait_state(port, lambda s: s["frame"] > first["frame"])
    assert get(port, "/frame")[2] != frame
    get(port, "/control?action=quit")
    result = run.result(timeout=30)
    assert result.interrupted and result.episodes[0].truncated


class RenderingCameraEnv(CameraEnv):
    """A camera env that renders too: two sources to choose from."""

    render_mode = "rgb_array"

    def render(self) -> np.ndarray:
        return np.full((10, 20, 3), 90, np.uint8)


def test_the_source_selector_switches_what_is_shown() -> None:
    port = free_port()
    view = rlmesh.View(backend="http", port=port, fps=50, source="camera")
    run = in_background(lambda: rlmesh.run(lambda obs: 0, RenderingCameraEnv(), seeds=[0],
                                           view=view))
    first = wait_state(port, lambda s: s["frame"] >= 1)
    assert first["sources"] == ["render", "camera"] and first["source"] == "camera"
    assert png_size(get(port, "/frame")[2]) == (24, 24)
    assert get(port, "/control?action=source&name=render")[0] == 200
    assert get(port, "/control?action=source&name=nope")[0] == 400
    shown = wait_state(port, lambda s: s["source"] == "render")["frame"]
    wait_state(port, lambda s: s["frame"] > shown)
    assert png_size(get(port, "/frame")[2]) == (20, 10)
    get(port, "/control?action=next")
    assert state(port)["source"] == "camera"
    get(port, "/control?action=quit")
    assert run.result(timeout=30).interrupted


def test_a_port_in_use_warns_and_the_run_completes() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.warns(rlmesh.RLMeshWarning, match="viewer"):
            result = rlmesh.run(lambda obs: 0, rendering_cartpole(), seeds=[0, 1],
                                view=f"http:{port}")
    assert len(result.episodes) == 2 and not result.interrupted
    assert all(e.terminated for e in result.episodes)


class BrokenRender(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose render() breaks after a few frames."""

    def __init__(self) -> None:
        super().__init__(rendering_cartpole())
        self.calls = 0

    def render(self) -> Any:
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("the renderer crashed")
        return self.env.render()


def test_a_frame_source_that_raises_warns_once_and_the_run_completes() -> None:
    env = BrokenRender()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rlmesh.run(slow_balance, env, seeds=[0, 1],
                            view=rlmesh.View(backend="http", port=0, fps=1000))
    viewer_warnings = [w for w in caught if "viewer" in str(w.message)]
    assert len(viewer_warnings) == 1
    assert issubclass(viewer_warnings[0].category, rlmesh.RLMeshWarning)
    assert "renderer crashed" in str(viewer_warnings[0].message)
    assert env.calls == 3  # after the failure the viewer never rendered again
    assert [e.steps for e in result.episodes] == [500, 500]


def test_the_session_shows_its_episodes_and_stops_on_quit() -> None:
    port = free_port()
    with rlmesh.session(slow_balance, rendering_cartpole(), view=f"http:{port}") as sess:
        run = in_background(lambda: sess.run(seeds=range(20)))
        wait_state(port, lambda s: s["episode"] == 1 and s["step"] >= 3)
        get(port, "/control?action=quit")
        result = run.result(timeout=30)
        assert sess.quit_requested
    assert result.interrupted and result.planned == 20 and len(result.episodes) == 2
    assert result.episodes[0].steps == 500 and result.episodes[1].truncated
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_vector_run_shows_lane_zero_and_quit_ends_every_lane() -> None:
    port = free_port()
    env = SyncVectorEnv([rendering_cartpole for _ in range(2)])
    run = in_background(lambda: rlmesh.run(slow_balance, env, seeds=range(10),
                                           view=f"http:{port}"))
    first = wait_state(port, lambda s: s["frame"] >= 1 and s["step"] >= 3)
    assert first["sources"] == ["render"]
    assert png_size(get(port, "/frame")[2]) == (600, 400)  # one lane's frame, not a mosaic
    get(port, "/control?action=quit")
    result = run.result(timeout=30)
    env.close()
    assert result.interrupted and len(result.episodes) == 2
    assert all(e.truncated and not e.terminated for e in result.episodes)
