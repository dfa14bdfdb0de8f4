"""The terminal viewer in a real terminal: a detached tmux session of known size.

A script runs a watched CartPole run in the tmux pane; the test reads the pane (half-block
cells in 24-bit colour and the HUD), presses ``s`` and ``q`` like a user, and checks that the
run ended with its partial result and that the terminal was given back as it was.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rlmesh.viewer.terminal import halfblocks, hud_line
from tests.support.painted import PAINT_SOURCE
from tests.viewer.panes import wait_pane

pytestmark = pytest.mark.timeout(90)

SCRIPT = PAINT_SOURCE + """
import time
import gymnasium as gym
import rlmesh


class PaintedCartPole(gym.Wrapper):
    render_mode = "rgb_array"

    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))

    def render(self):
        return paint_cartpole(self.env.unwrapped.state)


def painted_cartpole():
    return PaintedCartPole()

def policy(observation):
    time.sleep(0.002)
    return int(3 * observation[2] + observation[3] > 0)

env = painted_cartpole()
result = rlmesh.run(policy, env, seeds=range(100), view="terminal")
print("RESULT", len(result.episodes), result.interrupted,
      [(e.steps, e.terminated, e.truncated) for e in result.episodes])
"""

SHELL = """{python} {script}; echo "EXIT=$?"
printf 'STTY %s\\n' "$(stty -a | tr -s ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')"
sleep 60
"""


def test_terminal_viewer_in_tmux_draws_skips_quits_and_restores(
        tmux: Callable[..., str], tmp_path: Path) -> None:
    script = tmp_path / "watched.py"
    script.write_text(SCRIPT)
    shell = tmp_path / "pane.sh"
    shell.write_text(SHELL.format(python=sys.executable, script=script))
    tmux("new-session", "-d", "-s", "view", "-x", "100", "-y", "40", f"sh {shell}")

    coloured = wait_pane(tmux, lambda t: "\u2580" in t and "38;2;" in t and "48;2;" in t,
                         escapes=True)
    assert "episode" in coloured
    screen = wait_pane(tmux, lambda t: "step" in t and "\u2580" in t)
    rows = [line for line in screen.splitlines() if "\u2580" in line]
    assert 10 <= len(rows) <= 39 and all(len(line.rstrip()) <= 100 for line in rows)
    assert screen.splitlines()[0].startswith("episode 0")
    assert tmux("display", "-p", "-t", "view", "#{alternate_on}").strip() == "1"

    tmux("send-keys", "-t", "view", "s")  # skip: episode 0 is truncated, episode 1 starts
    wait_pane(tmux, lambda t: t.startswith("episode 1"))
    tmux("send-keys", "-t", "view", "q")
    ended = wait_pane(tmux, lambda t: "STTY" in t)

    assert "EXIT=0" in ended
    result = next(line for line in ended.splitlines() if line.startswith("RESULT"))
    assert result.startswith("RESULT 2 True [")
    episodes = eval(result.split(" ", 3)[3])  # the script's own list of tuples
    assert episodes[0][1:] == (False, True) and episodes[0][0] < 500
    assert episodes[1][1:] == (False, True) and episodes[1][0] < 500
    stty = next(line for line in ended.splitlines() if line.startswith("STTY")).split()
    assert "icanon" in stty and "echo" in stty  # cbreak mode undone
    assert tmux("display", "-p", "-t", "view", "#{alternate_on}").strip() == "0"


def test_halfblocks_fit_the_cells_and_carry_both_pixels() -> None:
    frame = np.zeros((10, 20, 3), np.uint8)
    frame[0::2] = (255, 0, 0)  # even rows red, odd rows blue
    frame[1::2] = (0, 0, 255)
    lines = halfblocks(frame, columns=20, rows=5)
    assert len(lines) == 5  # fits unscaled: one cell per pixel pair
    assert all(line.count("\u2580") == 20 for line in lines)
    assert all(line.count("38;2;255;0;0m\x1b[48;2;0;0;255m") == 20 for line in lines)
    big = halfblocks(np.zeros((400, 600, 3), np.uint8), columns=100, rows=38)
    assert len(big) == 33 and all(line.count("\u2580") == 100 for line in big)
    hud = hud_line({"episode": 3, "step": 7, "reward": 1.0, "return": 7.0,
                    "source": "render", "fps": 10.0})
    assert hud.startswith("episode 3  step 7  reward +1.000  return +7.000  source render")
