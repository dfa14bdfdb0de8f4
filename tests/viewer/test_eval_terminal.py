"""``rlmesh eval ... --view terminal``: the evaluation dashboard in a real terminal.

Four ``rlmesh serve`` children (a slow CartPole rendering ``rgb_array`` frames) are evaluated
from a detached tmux pane of known size. The test reads the pane (a tile per endpoint with
its address and half-block thumbnail in 24-bit colour, the returns line growing), presses
``q`` like a user, and checks the partial summary printed and the terminal given back. The
in-process tests check the same stop path and the best-effort warning without a terminal.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.testing import ServerProcess
from rlmesh.viewer.board import Board
from rlmesh.viewer.watch import EvalWatch
from tests.support.slow_env import slow_env_environment
from tests.viewer.dashboards import spawn_rendering
from tests.viewer.panes import Tmux, wait_pane

pytestmark = pytest.mark.timeout(150)

EPISODES = 5000
SHELL = """{python} -m rlmesh eval {addresses} --episodes {episodes} --seed 0 --view terminal
echo "EXIT=$?"
printf 'STTY %s\\n' "$(stty -a | tr -s ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')"
sleep 60
"""
RETURNS = re.compile(rf"^returns (\d+)/{EPISODES}\s+(\S*)", re.MULTILINE)


def _returns(screen: str) -> tuple[int, str]:
    found = RETURNS.search(screen)
    return (int(found.group(1)), found.group(2)) if found else (-1, "")


def _tiles_seen(screen: str, addresses: list[str]) -> bool:
    """Every address heads a tile (its line has a status), and thumbnails are drawn."""
    heads = [line for line in screen.splitlines()
             if re.search(r"\b(playing|idle|waiting)\s*$", line)]
    return (all(any(a in line for line in heads) for a in addresses)
            and sum("\u2580" in line for line in screen.splitlines()) >= 8)


def test_eval_view_terminal_draws_tiles_grows_and_stops_on_q(
        tmux: Tmux, spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    servers = spawn_rendering(spawn, slow_env_environment(tmp_path), 4)
    addresses = [s.address for s in servers]
    shell = tmp_path / "pane.sh"
    shell.write_text(SHELL.format(python=sys.executable, addresses=" ".join(addresses),
                                  episodes=EPISODES))
    tmux("new-session", "-d", "-s", "view", "-x", "120", "-y", "40", f"sh {shell}")

    coloured = wait_pane(tmux, lambda t: "38;2;" in t and "48;2;" in t and "\u2580" in t,
                         escapes=True, within=60)
    assert "rlmesh eval" in coloured
    screen = wait_pane(tmux, lambda t: _tiles_seen(t, addresses) and _returns(t)[0] >= 1)
    side_by_side = [line for line in screen.splitlines()
                    if len(re.findall("\u2580+", line)) == 2]
    assert len(side_by_side) >= 8  # two rows of two tiles, each with a thumbnail
    assert all(len(line.rstrip()) <= 120 for line in screen.splitlines())
    assert tmux("display", "-p", "-t", "view", "#{alternate_on}").strip() == "1"
    first, bars = _returns(screen)
    assert bars and set(bars) <= set("\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")
    later = wait_pane(tmux, lambda t: _returns(t)[0] > first)  # the returns line grows
    assert "running mean" in later and "95% [" in later

    tmux("send-keys", "-t", "view", "q")
    ended = wait_pane(tmux, lambda t: "STTY" in t, within=60)
    assert "EXIT=130" in ended  # stopped early, as Ctrl+C does
    title = re.search(rf"(\d+)/{EPISODES} episodes, \d+ steps, interrupted", ended)
    assert title is not None, ended  # the partial summary, printed on the normal screen
    assert first < int(title.group(1)) < EPISODES
    stty = next(line for line in ended.splitlines() if line.startswith("STTY")).split()
    assert "icanon" in stty and "echo" in stty  # cbreak mode undone
    assert tmux("display", "-p", "-t", "view", "#{alternate_on}").strip() == "0"


class _StopAfter(rlmesh.Hooks):
    """Asks the board to stop once ``count`` episodes finished (as ``q`` does)."""

    def __init__(self, board: Board, count: int) -> None:
        self.board, self.count, self.seen = board, count, 0

    def on_episode_end(self, result: Any) -> None:
        self.seen += 1
        if self.seen == self.count:
            self.board.request_stop()


@pytest.mark.filterwarnings("ignore:.*render method without specifying any render mode")
def test_a_stop_request_returns_the_partial_result(serve: Callable[..., Any]) -> None:
    servers = [serve(lambda: gym.make("CartPole-v1")) for _ in range(2)]
    with EvalWatch(Board()) as watch, pytest.warns(rlmesh.RLMeshWarning, match="render mode"):
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [s.address for s in servers],
                                 episodes=20000, seed=0, view=watch,
                                 hooks=_StopAfter(watch.board, 5))
        final = watch.board.state()
    assert result.interrupted and 5 <= result.num_episodes < 20000
    assert result.planned == 20000
    assert final["summary"]["interrupted"] is True
    assert final["summary"]["num_episodes"] == result.num_episodes


def test_view_terminal_without_a_terminal_warns_once_and_runs(
        serve: Callable[..., Any]) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [server.address], episodes=3, seed=0,
                                 view="terminal")
    assert result.complete and result.num_episodes == 3
    ours = [w for w in caught if issubclass(w.category, rlmesh.RLMeshWarning)]
    assert len(ours) == 1 and "needs a terminal" in str(ours[0].message)


@pytest.mark.parametrize("view", ["window", "http:notaport", 3])
def test_evaluate_refuses_a_view_it_cannot_show(serve: Callable[..., Any], view: Any) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with pytest.raises((ValueError, TypeError), match="view="):
        rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, [server.address], episodes=1, view=view)
