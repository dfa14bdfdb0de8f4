"""What the evaluation dashboard knows: one tile per endpoint, the finished episodes, events.

:class:`Board` is fed by the run (episode starts, steps, frames, events, episode ends, the
final summary; ``rlmesh.evaluate`` forwards its hooks here) and read by the page through
:meth:`Board.state`, a JSON-ready snapshot. Everything is plain values: the board knows
nothing of the evaluation layer above it.

Frames have a budget: :meth:`Board.wants_frame` says yes at most ``fps`` times a second per
endpoint, so a run renders only the frames a viewer shows. An endpoint whose ``render()``
gives no image is not asked again; its observations are shown instead when they are images.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from rlmesh.viewer.frames import LatestFrame, as_rgb
from rlmesh.viewer.stats import running_band, summary_stats

__all__ = ["Board", "Tile"]

_EVENTS_KEPT = 300
"""Events the page is sent (the newest); older ones stay in ``RunResult.events``."""


_SMALLEST = 8
"""Observations narrower than this many pixels are not taken for images."""


class Tile:
    """One endpoint as the page shows it: its live episode and its latest frame."""

    def __init__(self, slot: int, endpoint: str) -> None:
        self.slot, self.endpoint = slot, endpoint
        self.frame = LatestFrame()
        self.status = "waiting"
        self.playing: dict[int, list[Any]] = {}
        """Episodes in progress here: index -> ``[seed, step, return]``."""
        self.current: int | None = None
        self.finished = 0
        self.renders: bool | None = None
        """Whether ``render()`` gives images here (``None``: not known yet)."""
        self.observes = True
        """Whether observations here may be images (until one is not)."""
        self.last_frame = float("-inf")

    def view(self) -> dict[str, Any]:
        """The tile as the page gets it."""
        seed, step, total = self.playing.get(self.current, [None, 0, 0.0]) \
            if self.current is not None else [None, 0, 0.0]
        return {"slot": self.slot, "endpoint": self.endpoint, "status": self.status,
                "episode": self.current, "seed": seed, "step": step, "return": total,
                "finished": self.finished, "frame": self.frame.version}


class Board:
    """The state of one evaluation as the dashboard shows it (thread-safe).

    Args:
        fps: Frames per second each tile is sent at most.
    """

    def __init__(self, fps: float = 5.0) -> None:
        if not fps > 0:
            raise ValueError("fps must be > 0")
        self.interval = 1.0 / fps
        self._lock = threading.Lock()
        self._tiles: dict[str, Tile] = {}
        self._where: dict[int, Tile] = {}
        self._starts: dict[int, int] = {}
        self._episodes: list[dict[str, Any]] = []
        self._events: deque[dict[str, Any]] = deque(maxlen=_EVENTS_KEPT)
        self._summary: dict[str, Any] | None = None
        self.planned = 0
        self.started = time.time()
        self.ended = threading.Event()
        """Set once the run has ended (its summary is in)."""
        self.stop_requested = threading.Event()
        """Set when a viewer asks the run to stop early (``q`` in the terminal)."""

    # -- fed by the run ----------------------------------------------------------------------

    def begin(self, endpoints: list[str], planned: int) -> None:
        """A run starts on ``endpoints`` (a tile each) with ``planned`` episodes."""
        with self._lock:
            for address in endpoints:
                self._tile(address)
            self.planned = planned
            self.started = time.time()

    def episode_start(self, index: int, seed: int | None, endpoint: str | None,
                      observation: Any = None) -> None:
        """Episode ``index`` began on ``endpoint`` (a second start of an index is a replay)."""
        with self._lock:
            tile = self._tile(endpoint or "local")
            tile.status = "playing"
            tile.playing[index] = [seed, 0, 0.0]
            tile.current = index
            self._where[index] = tile
            starts = self._starts[index] = self._starts.get(index, 0) + 1
            if starts > 1:
                self._note("replay", tile.endpoint, f"episode {index} (seed {seed}) replayed "
                           f"on {tile.endpoint}, attempt {starts}", index)
        self._observed(tile, observation)

    def step(self, index: int, step: int, reward: float, observation: Any = None) -> None:
        """Episode ``index`` took step ``step`` and earned ``reward``."""
        with self._lock:
            tile = self._where.get(index)
            live = None if tile is None else tile.playing.get(index)
            if live is None or tile is None:
                return
            live[1] = step
            live[2] += reward
        self._observed(tile, observation)

    def wants_frame(self, index: int) -> bool:
        """Whether a ``render()`` frame of episode ``index`` is wanted now (the fps budget)."""
        with self._lock:
            tile = self._where.get(index)
            if tile is None or tile.renders is False or tile.current != index:
                return False
            now = time.monotonic()
            if now - tile.last_frame < self.interval:
                return False
            tile.last_frame = now
            return True

    def frame(self, index: int, frame: Any) -> None:
        """A rendered frame of episode ``index`` (dropped if not an image)."""
        image = as_rgb(frame)
        with self._lock:
            tile = self._where.get(index)
            if tile is None:
                return
            if image is None:
                tile.renders = False  # no images from render() here: use observations
                return
            tile.renders = True
        tile.frame.put(image)

    def event(self, event: dict[str, Any]) -> None:
        """An event of the run (``kind``, ``endpoint``, ``message``, ``episode``, ``time``)."""
        with self._lock:
            self._events.append(_plain_event(event))
            tile = self._tiles.get(str(event.get("endpoint")))
            kind = str(event.get("kind"))
            if tile is not None and kind in ("endpoint_failed", "endpoint_down",
                                             "connect_failed", "endpoint_mismatch"):
                tile.status = "failed"
                tile.playing.clear()
                tile.current = None
            elif tile is not None and kind == "endpoint_returned":
                tile.status = "waiting"

    def episode_end(self, episode: dict[str, Any]) -> None:
        """An episode finished: ``index``, ``seed``, ``reward``, ``steps``, ``success``, ..."""
        record = {key: episode.get(key) for key in
                  ("index", "seed", "reward", "steps", "success", "endpoint", "attempts")}
        index = int(episode["index"])
        with self._lock:
            self._episodes.append(record)
            tile = self._where.get(index)
            if tile is not None:
                tile.playing.pop(index, None)
                tile.finished += 1
                if tile.current == index:
                    tile.current = next(iter(tile.playing), None)
                if tile.current is None and tile.status == "playing":
                    tile.status = "idle"
            self._note("episode", record["endpoint"], f"episode {index} (seed "
                       f"{record['seed']}): return {float(record['reward'] or 0):.4g} in "
                       f"{record['steps']} steps", index)

    def end(self, summary: dict[str, Any], rewards: list[float]) -> None:
        """The run ended: its headline numbers (shown as they are) and every return.

        The summary shown adds the mean return's 95% interval (``stats``) to ``summary``.
        """
        with self._lock:
            self._summary = {**summary, "stats": summary_stats([float(r) for r in rewards])}
            for tile in self._tiles.values():
                if tile.status in ("playing", "idle", "waiting"):
                    tile.status = "done"
        self.ended.set()

    def request_stop(self) -> None:
        """A viewer asks the run to stop: it returns the episodes finished so far."""
        self.stop_requested.set()

    # -- read by the page --------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot: tiles, episodes, the running mean band, events, summary."""
        with self._lock:
            episodes = list(self._episodes)
            return {"planned": self.planned, "started": self.started,
                    "tiles": [t.view() for t in self._tiles.values()],
                    "episodes": episodes, "band": running_band(episodes),
                    "stats": summary_stats([float(e["reward"] or 0) for e in episodes]),
                    "events": list(self._events), "summary": self._summary}

    def tile(self, slot: int) -> Tile | None:
        """The tile numbered ``slot`` (in the order endpoints were first seen)."""
        with self._lock:
            tiles = list(self._tiles.values())
        return tiles[slot] if 0 <= slot < len(tiles) else None

    # -- inside ------------------------------------------------------------------------------

    def _tile(self, endpoint: str) -> Tile:
        tile = self._tiles.get(endpoint)
        if tile is None:
            tile = self._tiles[endpoint] = Tile(len(self._tiles), endpoint)
        return tile

    def _observed(self, tile: Tile, observation: Any) -> None:
        """Show an image observation when ``render()`` gives none (within the budget)."""
        if observation is None or tile.renders is True or not tile.observes:
            return
        now = time.monotonic()
        if now - tile.last_frame < self.interval:
            return
        image = as_rgb(observation)
        if image is None or min(image.shape[:2]) < _SMALLEST:
            tile.observes = False
            return
        with self._lock:
            tile.renders = False  # images come from observations here: never render
            tile.last_frame = now
        tile.frame.put(image)

    def _note(self, kind: str, endpoint: str | None, message: str, index: int | None) -> None:
        self._events.append({"kind": kind, "endpoint": endpoint, "message": message,
                             "episode": index, "time": time.time()})


def _plain_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event's documented fields, as JSON-ready values."""
    def plain(value: Any) -> Any:
        return value if value is None or isinstance(value, (int, float, str, bool)) \
            else str(value)
    return {key: plain(event.get(key)) for key in ("kind", "endpoint", "message", "episode",
                                                   "time")}
