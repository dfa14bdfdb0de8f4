"""Runs watched by the live viewer, driven over its real HTTP page (loopback only)."""

from __future__ import annotations

import json
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def balance(observation: Any) -> int:
    """Keeps CartPole up for its whole 500 steps (pole angle and angular velocity)."""
    return int(3 * observation[2] + observation[3] > 0)


def slow_balance(observation: Any) -> int:
    """:func:`balance`, a millisecond per step: episodes last long enough to watch."""
    time.sleep(0.001)
    return balance(observation)


def in_background(call: Callable[[], Any]) -> Future[Any]:
    """``call()`` on a daemon-like worker thread (the caller joins it with a timeout)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    pool.shutdown(wait=False)
    return future


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` of ``GET http://127.0.0.1:port/path``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def state(port: int) -> dict[str, Any]:
    return dict(json.loads(get(port, "/state.json")[2]))


def wait_state(port: int, ok: Callable[[dict[str, Any]], bool],
               within: float = 20.0) -> dict[str, Any]:
    """Poll ``/state.json`` until ``ok(state)``; the state (fails after ``within`` s)."""
    deadline = time.monotonic() + within
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = state(port)
        except OSError:
            last = {}
        if last and ok(last):
            return last
        time.sleep(0.02)
    raise AssertionError(f"the viewer's state never got there; last: {last}")


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


class CameraEnv(gym.Env[dict[str, Any], int]):
    """An env that does not render but observes a camera (HWC, or CHW) and a state vector.

    The camera shows a bright bar at the step count's column, so frames change every step.
    """

    def __init__(self, chw: bool = False, size: int = 24) -> None:
        shape = (3, size, size) if chw else (size, size, 3)
        self.chw, self.size = chw, size
        self.observation_space = spaces.Dict({
            "state": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "camera": spaces.Box(0, 255, shape, np.uint8)})
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _obs(self) -> dict[str, Any]:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        image[:, self.t % self.size] = (255, 200, 50)
        if self.chw:
            image = image.transpose(2, 0, 1).copy()
        return {"state": np.zeros(4, np.float32), "camera": image}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        time.sleep(0.001)
        self.t += 1
        return self._obs(), 1.0, self.t >= 2000, False, {}
