"""Helpers of the dashboard tests: slow rendering endpoints, a run in a thread, the page's JSON."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rlmesh
from rlmesh.testing import ServerProcess
from tests.support.slow_env import SLOW_MODULE

STEP_DELAY = 0.01
"""Seconds each env step sleeps: a run of a few dozen episodes lasts a few seconds."""


def spawn_rendering(spawn: Callable[..., ServerProcess], env: dict[str, str],
                    count: int) -> list[ServerProcess]:
    """``count`` slow CartPole endpoints rendering ``rgb_array`` frames (child processes)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: spawn(
            f"{SLOW_MODULE}:SlowCartPole", env=env,
            kwargs={"delay": STEP_DELAY, "render_mode": "rgb_array"}), range(count)))


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
    """GET ``url`` (loopback only): status, body, headers; an HTTP error is a status too."""
    assert url.startswith("http://127.0.0.1:"), url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def state(base: str) -> dict[str, Any]:
    """The dashboard's ``/state.json``."""
    status, body, headers = get(base + "state.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    result: dict[str, Any] = json.loads(body)
    return result


class Background:
    """``rlmesh.evaluate`` in a thread; :meth:`result` joins it (and re-raises its error)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._out: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=args, kwargs=kwargs,
                                        daemon=True, name="dashboard-test-run")
        self._thread.start()

    def _run(self, *args: Any, **kwargs: Any) -> None:
        try:
            self._out["result"] = rlmesh.evaluate(*args, **kwargs)
        except BaseException as exc:  # handed to the test by result()
            self._out["error"] = exc

    @property
    def running(self) -> bool:
        """Whether the run goes on."""
        return self._thread.is_alive()

    def result(self, timeout: float = 60.0) -> rlmesh.RunResult:
        """The run's result, once it ends."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the evaluation did not end in time"
        if "error" in self._out:
            raise self._out["error"]
        result: rlmesh.RunResult = self._out["result"]
        return result


def wait_state(base: str, condition: Callable[[dict[str, Any]], bool],
               within: float = 30.0) -> dict[str, Any]:
    """Poll ``/state.json`` until ``condition`` holds; the state that satisfied it."""
    deadline = time.monotonic() + within
    while True:
        current = state(base)
        if condition(current):
            return current
        assert time.monotonic() < deadline, f"the dashboard never got there: {current}"
        time.sleep(0.05)
