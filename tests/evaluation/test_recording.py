"""Episode videos: ``rlmesh.VideoRecorder`` and ``rlmesh eval --record``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from tests.support.deps import need

pytestmark = [
    pytest.mark.timeout(90),
    # imageio-ffmpeg starts ffmpeg with a preexec_fn (a fork), and JAX, imported by other
    # tests of this process, warns about every fork; ffmpeg execs at once, so it does not apply.
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
]

imageio = need("imageio.v2")
need("pygame")  # CartPole's rgb_array frames


def frames_of(path: Path) -> list[Any]:
    return list(imageio.mimread(str(path), memtest=False))


def test_recorder_writes_one_video_per_episode(spawn: Callable[..., Any],
                                               tmp_path: Path) -> None:
    server = spawn("CartPole-v1", kwargs={"render_mode": "rgb_array"})
    recorder = rlmesh.VideoRecorder(tmp_path / "videos", fps=20)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, server.address, seeds=[1, 2], hooks=recorder)
    paths = sorted(Path(p) for p in recorder.paths)
    assert len(paths) == 2 and all(p.parent == tmp_path / "videos" for p in paths)
    for episode, path in zip(result.episodes, paths, strict=True):
        assert f"seed{episode.seed}_return{episode.reward:.1f}_ep{episode.index:04d}" in path.name
        assert path.name.startswith(server.address.replace(":", "-"))
        frames = frames_of(path)
        assert len(frames) == episode.steps + 1  # the reset frame, then one per step
        assert frames[0].shape == (400, 600, 3)


def test_recorder_on_vector_lanes(tmp_path: Path) -> None:
    env = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", render_mode="rgb_array")
    recorder = rlmesh.VideoRecorder(tmp_path)
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, env, seeds=[3, 4, 5], hooks=recorder)
    assert len(recorder.paths) == 3
    by_index = {int(Path(p).stem.rsplit("_ep", 1)[1]): Path(p) for p in recorder.paths}
    for episode in result.episodes:
        assert len(frames_of(by_index[episode.index])) == episode.steps + 1


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
@pytest.mark.filterwarnings("ignore:.*serves an env without a render mode")
def test_an_env_without_rgb_frames_records_nothing(serve: Callable[..., Any],
                                                   tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))  # render_mode None: render() is None
    recorder = rlmesh.VideoRecorder(tmp_path)
    rlmesh.run(rlmesh.RANDOM_SAMPLE, server.address, seeds=[1], hooks=recorder)
    assert recorder.paths == [] and list(tmp_path.iterdir()) == []
    assert "rgb_array" in caplog.text


def test_eval_record_option(spawn: Callable[..., Any], tmp_path: Path) -> None:
    server = spawn("CartPole-v1", kwargs={"render_mode": "rgb_array"})
    result = subprocess.run(
        [sys.executable, "-m", "rlmesh", "eval", server.address, "--episodes", "2",
         "--record", str(tmp_path / "rec"), "-q"], capture_output=True, text=True, timeout=80)
    assert result.returncode == 0, result.stderr
    videos = sorted((tmp_path / "rec").glob("*.mp4"))
    assert len(videos) == 2 and all(frames_of(v) for v in videos)
