"""The frame budget: frames are produced at most fps times a second and dropped, not queued."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.viewer.frames import LatestFrame
from rlmesh.viewer.live import LiveViewer
from rlmesh.viewer.state import ViewerState
from rlmesh.viewer.view import View
from tests.support.painted import painted_cartpole
from tests.support.watching import balance, get, state

pytestmark = pytest.mark.timeout(60)


class SlowDisplay:
    """A display that takes 50 ms per frame (a slow terminal or a slow browser)."""

    def __init__(self, slot: LatestFrame, state: ViewerState) -> None:
        self.slot, self.shown = slot, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        version = 0
        while not self.stop.is_set():
            version, frame = self.slot.wait_newer(version, 0.1)
            if frame is not None and version > self.shown:
                time.sleep(0.05)
                self.shown += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def play(viewer: LiveViewer, steps: int) -> int:
    """Drive ``viewer`` through a CartPole episode by hand; the steps taken."""
    env = painted_cartpole()
    viewer.start(env, env.observation_space)
    observation, _ = env.reset(seed=0)
    viewer.on_reset(observation)
    taken = 0
    for taken in range(1, steps + 1):
        observation, reward, terminated, truncated, _ = env.step(balance(observation))
        viewer.on_step(observation, float(reward), taken, terminated, truncated)
        assert not viewer.should_skip() and not viewer.should_quit()
        if terminated or truncated:
            break
    viewer.close()
    env.close()
    return taken


def test_a_slow_display_drops_frames_instead_of_queueing_them() -> None:
    displays: list[SlowDisplay] = []

    def slow(slot: LatestFrame, state: ViewerState) -> SlowDisplay:
        displays.append(SlowDisplay(slot, state))
        return displays[-1]

    viewer = LiveViewer(View(fps=1000), displays=[slow])
    assert play(viewer, 500) == 500
    assert viewer.frames > 0 and 1 <= viewer.shown < viewer.frames
    assert viewer.shown == displays[0].shown


class CountingRender(gym.Wrapper[Any, Any, Any, Any]):
    def __init__(self) -> None:
        super().__init__(painted_cartpole())
        self.renders = 0

    def render(self) -> Any:
        self.renders += 1
        return self.env.render()


def test_render_is_called_only_when_a_frame_is_due() -> None:
    env = CountingRender()
    viewer = LiveViewer(View(fps=1), displays=[])  # one frame a second at most
    viewer.start(env, env.observation_space)
    observation, _ = env.reset(seed=0)
    viewer.on_reset(observation)
    for step in range(1, 200):
        observation, reward, terminated, truncated, _ = env.step(balance(observation))
        viewer.on_step(observation, float(reward), step, terminated, truncated)
    viewer.close()
    assert env.renders == viewer.frames
    assert 1 <= env.renders < 200


def test_a_free_port_is_chosen_and_its_address_printed_once(
        capfd: pytest.CaptureFixture[str]) -> None:
    env = painted_cartpole()
    viewer = LiveViewer(View(backend="http"))
    viewer.start(env, env.observation_space)
    try:
        assert viewer.url is not None
        port = int(re.findall(r":(\d+)/$", viewer.url)[0])
        assert port > 0 and state(port)["sources"] == ["render"]
        assert get(port, "/frame")[0] == 503  # no frame yet
    finally:
        viewer.close()
        env.close()
    err = capfd.readouterr().err
    assert err.count("rlmesh viewer: http://127.0.0.1:") == 1 and viewer.url in err


def test_no_image_to_show_warns_and_the_hud_still_works() -> None:
    env = gym.make("CartPole-v1")  # no render mode, vector observations
    with pytest.warns(rlmesh.RLMeshWarning, match="no frames to show"):
        result = rlmesh.run(balance, env, seeds=[0], view=rlmesh.View(backend="http", port=0))
    assert result.episodes[0].steps == 500


def test_an_unknown_source_warns_and_shows_the_first() -> None:
    env = painted_cartpole()
    viewer = LiveViewer(View(source="camera"), displays=[])
    with pytest.warns(rlmesh.RLMeshWarning, match="'camera' is not offered"):
        viewer.start(env, env.observation_space)
    assert viewer.state.source == "render"
    viewer.close()


def test_jpeg_frames_with_pillow() -> None:
    pytest.importorskip("PIL")
    env = painted_cartpole()
    viewer = LiveViewer(View(backend="http", port=0, format="jpeg", quality=40))
    viewer.start(env, env.observation_space)
    try:
        assert viewer.url is not None
        port = int(re.findall(r":(\d+)/$", viewer.url)[0])
        observation, _ = env.reset(seed=0)
        viewer.on_reset(observation)
        deadline = time.monotonic() + 10
        while state(port)["frame"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        status, kind, body = get(port, "/frame")
        assert status == 200 and kind == "image/jpeg" and body[:2] == b"\xff\xd8"
    finally:
        viewer.close()
        env.close()
