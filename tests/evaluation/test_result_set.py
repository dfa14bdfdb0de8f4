"""``rlmesh.Recorder``: runs recorded as workloads of one result set, exported as a bundle."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from tests.support.deps import need

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
    # (without the 'record' extra, frames are kept as .npz and a RuntimeWarning says so)
    pytest.mark.filterwarnings("ignore:.*ffmpeg plugin is missing:RuntimeWarning"),
]


def cartpole_run(episodes: int = 3, **kwargs: Any) -> rlmesh.RunResult:
    return rlmesh.run(rlmesh.RANDOM_SAMPLE, gym.make("CartPole-v1"),
                      seeds=range(episodes), **kwargs)


class ImageObs(gym.Env[dict[str, Any], int]):
    """Three steps of a dict observation with a camera image; writes a video of its own."""

    def __init__(self, video: Path | None = None) -> None:
        self.observation_space = gym.spaces.Dict({
            "wrist": gym.spaces.Box(0, 255, (6, 8, 3), np.uint8),
            "state": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})
        self.action_space = gym.spaces.Discrete(2)
        self.video, self.t = video, 0

    def _obs(self) -> dict[str, Any]:
        return {"wrist": np.full((6, 8, 3), self.t * 40, np.uint8),
                "state": np.zeros(2, np.float32)}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.t += 1
        done = self.t == 3
        info: dict[str, Any] = {"is_success": done}
        if done and self.video is not None:
            info["video_artifact_path"] = str(self.video)
        return self._obs(), 1.0, done, False, info


def test_add_records_a_run_as_one_workload() -> None:
    recorder = rlmesh.Recorder()
    result = cartpole_run(3)
    workload = recorder.add(result, model="random", env="CartPole-v1",
                            config={"seeds": [0, 1, 2]})
    assert recorder.workloads == (workload,)
    assert (workload.model, workload.env, workload.task) == ("random", "CartPole-v1",
                                                             "CartPole-v1")
    assert [e.index for e in workload.episodes] == [0, 1, 2]
    assert [e.seed for e in workload.episodes] == [0, 1, 2]
    assert [e.reward for e in workload.episodes] == [e.reward for e in result.episodes]
    assert workload.mean_reward == pytest.approx(result.mean_reward)
    assert workload.total_steps == result.total_steps


def test_to_dict_is_the_result_v1_document() -> None:
    recorder = rlmesh.Recorder(result_set_id="set-1")
    result = cartpole_run(2)
    recorder.add(result, model="m", env="CartPole-v1", task="balance")
    document = recorder.to_dict(recorded_at="2026-01-02T03:04:05+00:00")
    assert json.loads(json.dumps(document)) == document  # plain JSON
    assert document["schema"] == "rlmesh.result.v1"
    assert document["resultSetId"] == recorder.result_set_id == "set-1"
    assert document["recordedAt"] == "2026-01-02T03:04:05+00:00"
    (workload,) = document["workloads"]
    assert workload["task"] == "balance" and workload["numEpisodes"] == 2
    assert workload["metrics"]["totalSteps"] == result.total_steps
    first = workload["episodes"][0]
    assert first["steps"] == result.episodes[0].steps
    assert first["durationS"] == pytest.approx(result.episodes[0].duration_s)
    assert first["includedInMetrics"] is True and "media" not in first
    assert recorder.to_dict()["recordedAt"].endswith("+00:00")  # now, UTC


def test_each_recorder_mints_its_own_id() -> None:
    assert rlmesh.Recorder().result_set_id != rlmesh.Recorder().result_set_id


def test_episodes_left_out_of_metrics_are_kept_but_not_counted() -> None:
    recorder = rlmesh.Recorder()
    warmup = recorder.add(cartpole_run(1), model="m", env="e", included_in_metrics=False)
    assert warmup.episodes[0].included_in_metrics is False
    assert warmup.mean_reward == 0.0 and warmup.total_steps > 0


def test_success_rate_counts_reported_success() -> None:
    recorder = rlmesh.Recorder()
    workload = recorder.add(rlmesh.run(rlmesh.RANDOM_SAMPLE, ImageObs(), seeds=[0, 1]),
                            model="m", env="image")
    assert workload.success_rate == 1.0
    cartpole = recorder.add(cartpole_run(2), model="m", env="CartPole-v1")
    assert cartpole.success_rate == 0.0  # no success reported: a terminal state is not one


@pytest.mark.parametrize(("name", "archive", "zipped"), [
    ("bundle", None, False), ("bundle.zip", None, True), ("bundle", True, True),
    ("bundle", "zip", True), ("bundle.zip", False, False), ("bundle", "folder", False)])
def test_export_round_trips(tmp_path: Path, name: str, archive: Any, zipped: bool) -> None:
    recorder = rlmesh.Recorder()
    recorder.add(cartpole_run(2), model="m", env="CartPole-v1")
    path = recorder.export(tmp_path / name, archive=archive, recorded_at="then")
    assert path == tmp_path / name
    if zipped:
        with zipfile.ZipFile(path) as bundle:
            document = json.loads(bundle.read("result.json"))
    else:
        document = json.loads((path / "result.json").read_text())
    assert document == recorder.to_dict(recorded_at="then")


def test_export_refuses_an_unknown_archive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="archive"):
        rlmesh.Recorder().export(tmp_path / "x", archive="tar")


@pytest.mark.parametrize("options", [{"fps": 0}, {"quality": 0}, {"quality": 101}])
def test_bad_video_settings_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        rlmesh.Recorder(**options)


def test_one_capture_watches_several_runs_into_one_workload() -> None:
    recorder = rlmesh.Recorder()
    hooks = recorder.capture(model="random", env="CartPole-v1")
    assert isinstance(hooks, rlmesh.RunHooks)
    first = cartpole_run(2, hooks=hooks)
    second = cartpole_run(2, hooks=hooks)
    (workload,) = recorder.workloads
    assert [e.index for e in workload.episodes] == [0, 1, 2, 3]  # unique across the runs
    assert [e.steps for e in workload.episodes] == [
        e.steps for e in (*first.episodes, *second.episodes)]
    assert all(not e.media for e in workload.episodes)  # no cameras, no session: metrics


def test_capture_films_observation_cameras_and_carries_env_videos(tmp_path: Path) -> None:
    video = tmp_path / "env-video.mp4"
    video.write_bytes(b"not really a video")
    with rlmesh.Recorder(fps=10) as recorder:
        hooks = recorder.capture(model="m", env="image", cameras=["wrist"])
        rlmesh.run(rlmesh.RANDOM_SAMPLE, ImageObs(video), seeds=[0, 1], hooks=hooks)
        path = recorder.export(tmp_path / "out.zip")
    (workload,) = recorder.workloads
    for episode in workload.episodes:
        wrist, carried = episode.media
        assert (wrist.camera, wrist.frame_count, wrist.width, wrist.height, wrist.fps) == (
            "wrist", 4, 8, 6, 10.0)  # the reset frame and one per step
        assert (carried.camera, carried.kind, carried.format) == ("default", "video", "mp4")
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        document = json.loads(bundle.read("result.json"))
        assert bundle.read(workload.episodes[1].media[1].path) == b"not really a video"
    refs = [m["path"] for e in document["workloads"][0]["episodes"] for m in e["media"]]
    assert len(set(refs)) == 4 and set(refs) <= names
    assert all(ref.startswith("media/") for ref in refs)


def test_capture_on_a_session_finds_its_cameras(serve: Callable[..., Any],
                                                tmp_path: Path) -> None:
    need("pygame")  # CartPole's rgb_array frames
    server = serve(lambda: gym.make("CartPole-v1", render_mode="rgb_array"))
    recorder = rlmesh.Recorder()
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, server.address) as sess:
        hooks = recorder.capture(model="random", env="CartPole-v1", session=sess)
        result = sess.run(seeds=[0], hooks=hooks)
    out = recorder.export(tmp_path / "bundle")
    recorder.close()
    (episode,) = recorder.workloads[0].episodes
    (render,) = episode.media
    assert render.camera == "render" and render.frame_count == result.episodes[0].steps + 1
    assert (render.width, render.height) == (600, 400)
    assert (out / render.path).stat().st_size > 0


def test_capture_through_run_films_render_frames(tmp_path: Path) -> None:
    need("pygame")
    recorder = rlmesh.Recorder()
    hooks = recorder.capture(model="random", env="CartPole-v1", cameras=["render"])
    result = rlmesh.run(rlmesh.RANDOM_SAMPLE, gym.make("CartPole-v1", render_mode="rgb_array"),
                        seeds=[0], hooks=hooks)
    (render,) = recorder.workloads[0].episodes[0].media
    assert render.frame_count == result.episodes[0].steps + 1
    recorder.close()


def test_a_camera_that_is_no_image_is_dropped_with_a_warning() -> None:
    recorder = rlmesh.Recorder()
    hooks = recorder.capture(model="m", env="image", cameras=["state"])
    with pytest.warns(RuntimeWarning, match="state"):
        result = rlmesh.run(rlmesh.RANDOM_SAMPLE, ImageObs(), seeds=[0], hooks=hooks)
    assert result.num_episodes == 1  # the run went on
    assert recorder.workloads[0].episodes[0].media == ()


def test_close_deletes_staged_media(tmp_path: Path) -> None:
    recorder = rlmesh.Recorder()
    hooks = recorder.capture(model="m", env="image", cameras=["wrist"])
    rlmesh.run(rlmesh.RANDOM_SAMPLE, ImageObs(), seeds=[0], hooks=hooks)
    staged = Path(recorder._stager.assets[0][0])
    assert staged.is_file()
    recorder.close()
    recorder.close()  # idempotent
    assert not staged.exists()


def test_recorder_with_a_directory_is_the_deprecated_video_recorder(tmp_path: Path) -> None:
    need("imageio_ffmpeg")
    with pytest.warns(DeprecationWarning, match="rlmesh.VideoRecorder"):
        recorder = rlmesh.Recorder(tmp_path / "videos", fps=20)
    assert isinstance(recorder, rlmesh.VideoRecorder) and recorder.fps == 20
    with pytest.warns(DeprecationWarning):
        assert isinstance(rlmesh.Recorder(directory=tmp_path / "v2"), rlmesh.VideoRecorder)
