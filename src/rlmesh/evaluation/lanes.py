"""Episodes on the lanes of a vector env: :func:`play_lanes`.

Every lane plays its own planned episodes: a lane that finishes is reset (a masked reset,
with the next episode's seed) while the others go on, so the result of each seed equals that
of a single env. One lane's values and infos are read out of the batches with
:mod:`rlmesh.vector.batching`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from rlmesh.evaluation.adapting import adapt_batch
from rlmesh.evaluation.results import EpisodeResult, success_of
from rlmesh.evaluation.watching import cut_by_viewer
from rlmesh.vector.batching import final_info, lane_info, pick

if TYPE_CHECKING:
    from rlmesh.evaluation.hooks import HookList
    from rlmesh.evaluation.lifecycle import EpisodeState
    from rlmesh.evaluation.policy import BatchPredictor, Policy, Predictor
    from rlmesh.viewer.live import LiveViewer

__all__ = ["play_lanes"]


class _Lane:
    """The episode a lane is playing."""

    __slots__ = ("episode", "index", "predict", "seed", "started", "steps", "total")

    def __init__(self, index: int, seed: int | None, episode: EpisodeState,
                 predict: Predictor) -> None:
        self.index, self.seed, self.episode, self.predict = index, seed, episode, predict
        self.steps, self.total, self.started = 0, 0.0, time.perf_counter()


class _LanePlayer:
    """Plays planned episodes on the lanes of one vector env (see :func:`play_lanes`)."""

    def __init__(self, model: Policy, env: Any, episodes: list[tuple[int, int | None]],
                 max_steps: int | None, hooks: HookList, endpoint: str | None,
                 done: Callable[[EpisodeResult], None],
                 viewer: LiveViewer | None = None) -> None:
        self.model, self.env, self.max_steps = model, env, max_steps
        self.viewer = viewer
        self.hooks, self.endpoint, self.done = hooks, endpoint, done
        self.lanes = int(env.num_envs)
        self.queue = list(reversed(episodes))
        self.state: list[_Lane | None] = [None] * self.lanes
        self.observations: Any = None
        self.film = hooks.watches_frames

    def play(self) -> None:
        """Play every episode; returns when all lanes are idle."""
        seeds: list[int | None] = [None] * self.lanes
        for k in range(self.lanes):
            lane = self._next()
            self.state[k] = lane
            seeds[k] = lane.seed if lane is not None else None
        self.observations, infos = self.env.reset(seed=seeds)
        self._started(range(self.lanes), infos)
        batch = self.model.batch() if self.model.batched else None
        if batch is not None and self.model.adapter is not None:
            batch = adapt_batch(batch, self.model.adapter, self.model.observation_space)
        while any(lane is not None for lane in self.state):
            actions = self._actions(batch)
            observations, rewards, terms, truncs, infos = self.env.step(actions)
            self.observations = observations
            if self.film:  # (the frame a lane shows after its last step is its final one)
                self._film(self.state)
            finished = self._advance(actions, rewards, terms, truncs, infos)
            if finished.any():
                self._reset(finished)

    def _next(self) -> _Lane | None:
        """The next planned episode, started (``None`` when none is left)."""
        if not self.queue:
            return None
        index, seed = self.queue.pop()
        return _Lane(index, seed, *self.model.start(seed))

    def _started(self, indices: Any, infos: Any) -> None:
        """Tell the hooks the listed lanes' episodes began (and film their first frames)."""
        for k in indices:
            lane = self.state[k]
            if lane is not None:
                self.hooks.on_episode_start(lane.index, lane.seed, pick(self.observations, k),
                                            lane_info(infos, k), self.endpoint)
                if k == 0 and self.viewer is not None:
                    self.viewer.on_reset(pick(self.observations, 0))
        if self.film:
            self._film([self.state[k] if k in indices else None for k in range(self.lanes)])

    def _actions(self, batch: BatchPredictor | None) -> Any:
        """One action per lane: a batch prediction, or each lane's (idle lanes sample)."""
        if batch is not None:
            actions = batch(self.observations,
                            [lane.episode if lane is not None else None for lane in self.state])
            return np.asarray(actions) if isinstance(actions, list) else actions
        idle = self.env.single_action_space
        return np.stack([np.asarray(
            lane.predict(pick(self.observations, k)) if lane is not None else idle.sample())
            for k, lane in enumerate(self.state)])

    def _advance(self, actions: Any, rewards: Any, terms: Any, truncs: Any,
                 infos: Any) -> np.ndarray[Any, Any]:
        """Count the step on every lane; end finished episodes. Returns which lanes ended."""
        finished = np.zeros(self.lanes, dtype=bool)
        watch = self.hooks.watches_steps
        for k, lane in enumerate(self.state):
            term, trunc = bool(terms[k]), bool(truncs[k])
            if lane is None:
                finished[k] = term or trunc
                continue
            lane.steps += 1
            lane.total += float(rewards[k])
            if watch:
                self.hooks.on_step(lane.index, lane.steps, pick(actions, k),
                                   pick(self.observations, k), float(rewards[k]), term, trunc,
                                   lane_info(infos, k))
            if self.viewer is not None:
                trunc = self._watched(k, actions, rewards, term, trunc) or trunc
            if not (term or trunc or (self.max_steps is not None
                                      and lane.steps >= self.max_steps)):
                continue
            finished[k] = True
            result = EpisodeResult(lane.index, lane.seed, lane.steps, lane.total, term,
                                   trunc or not term, success_of(final_info(infos, k)),
                                   time.perf_counter() - lane.started, self.endpoint)
            self.model.close_episode(lane.episode)
            self.hooks.on_episode_end(result)
            self.done(result)
            self.state[k] = self._next()
        return finished

    def _watched(self, k: int, actions: Any, rewards: Any, term: bool, trunc: bool) -> bool:
        """Show lane 0's step; whether the viewer ends lane ``k``'s episode (skip or quit)."""
        assert self.viewer is not None
        if self.viewer.should_quit():
            self.queue.clear()  # a quit ends every lane's episode and starts no other
            return not term
        if k != 0:
            return False
        lane = self.state[0]
        steps = lane.steps if lane is not None else 0
        return cut_by_viewer(self.viewer, pick(self.observations, 0), rewards[0], steps,
                             term, trunc) and not term

    def _reset(self, finished: np.ndarray[Any, Any]) -> None:
        """A fresh, seeded start for every lane that ended (a masked reset)."""
        ended = [int(k) for k in np.flatnonzero(finished)]
        seeds: list[int | None] = [None] * self.lanes
        for k in ended:
            lane = self.state[k]
            seeds[k] = lane.seed if lane is not None else None
        self.observations, fresh = self.env.reset(seed=seeds, options={"reset_mask": finished})
        self._started(ended, fresh)

    def _film(self, state: list[_Lane | None]) -> None:
        """Hand each listed lane's current frame to the hooks (if some hook wants one)."""
        wanted = [lane is not None and self.hooks.wants_frame(lane.index) for lane in state]
        if not any(wanted):
            return
        frames = self.env.render()
        if frames is None:
            return
        for k, lane in enumerate(state):
            if lane is not None and wanted[k] and k < len(frames):
                self.hooks.on_frame(lane.index, frames[k])


def play_lanes(model: Policy, env: Any, episodes: list[tuple[int, int | None]],
               max_steps: int | None, hooks: HookList, endpoint: str | None,
               done: Callable[[EpisodeResult], None],
               viewer: LiveViewer | None = None) -> None:
    """Play ``episodes`` (``(index, seed)`` pairs) on the lanes of a vector env.

    Each lane plays one episode at a time; ``done`` receives each finished episode. A live
    ``viewer`` shows lane 0 (its skip truncates lane 0's episode, its quit every lane's).
    """
    _LanePlayer(model, env, episodes, max_steps, hooks, endpoint, done, viewer).play()
