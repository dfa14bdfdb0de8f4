"""``rlmesh serve`` has the options the README says it has (attack review D17).

The README's "Leave it running" block lists ``ServeOptions`` and says "the same options exist
on the command line", but ``rlmesh serve`` had no ``--resume-window`` (so a CLI-served endpoint
could not resume sessions) and no ``--max-message-bytes``. The servers here are real child
``rlmesh serve`` processes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.numpy import RemoteEnv
from tests.support.processes import rlmesh_cmd

README = Path(__file__).resolve().parents[2] / "README.md"


def test_resume_window_on_the_command_line(spawn: Callable[..., Any],
                                           closing: Callable[[Any], Any]) -> None:
    server = spawn("CartPole-v1", extra_args=["--resume-window", "5"])
    env = closing(RemoteEnv(server.address, timeout=10))
    assert env.contract["resume"]["window"] == 5
    local = gym.make("CartPole-v1")
    np.testing.assert_array_equal(env.reset(seed=4)[0], local.reset(seed=4)[0])
    for action in (0, 1, 1, 0):
        env._channel._conn.abort()  # as if the network dropped the connection
        got, want = env.step(action), local.step(action)
        np.testing.assert_array_equal(got[0], want[0])  # the same session, resumed


def test_max_message_bytes_on_the_command_line(spawn: Callable[..., Any]) -> None:
    server = spawn("CartPole-v1", extra_args=["--max-message-bytes", "65536"])
    channel = Channel(server.address, timeout=10)
    try:
        assert channel.contract["max_message_bytes"] == 65536
        assert channel.request(P.OP_PING, b"x" * 1000)[2] == b"x" * 1000
        channel._peer_max = 1 << 30  # past the client's own check: the server refuses it
        with pytest.raises(rlmesh.MessageTooLargeError):
            channel.request(P.OP_PING, b"x" * 100_000)
    finally:
        channel.abandon()


def test_a_bad_value_is_a_one_line_error() -> None:
    done = rlmesh_cmd("serve", "CartPole-v1", "--address", "127.0.0.1:0",
                      "--resume-window", "0", timeout=60)
    assert done.returncode == 1
    assert "resume_window must be > 0" in done.stderr


def test_every_option_the_readme_shows_exists_on_the_command_line() -> None:
    text = README.read_text()
    block = text[text.index("options = rlmesh.ServeOptions("):]
    block = block[: block.index("\n)")]
    fields = re.findall(r"^\s+(\w+)=", block, re.MULTILINE)
    assert "resume_window" in fields
    assert "the same options exist on the command line" in text.lower()
    usage = rlmesh_cmd("serve", "--help", timeout=60).stdout
    missing = [f for f in fields if f"--{f.replace('_', '-')}" not in usage]
    assert not missing, f"README's ServeOptions missing from rlmesh serve: {missing}"
    for flag in ("--max-message-bytes", "--max-sessions", "--idle-timeout"):
        assert flag in text and flag in usage  # (README's Security section)
