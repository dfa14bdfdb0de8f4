"""The ``rlmesh`` command as a newcomer meets it: --version, flags after the command, help
with examples everywhere, one startup line, sessions logged, readiness with ``ping --wait``,
and one-line errors."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.cli import build_parser
from rlmesh.numpy import RemoteEnv
from tests.support.net import free_port
from tests.support.processes import rlmesh_cmd, stop_child

pytestmark = pytest.mark.timeout(90)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every leaf command by its words (``"serve"``, ``"ray serve"``...)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(words: str, parser: argparse.ArgumentParser) -> None:
        action = next((a for a in parser._actions
                       if isinstance(a, argparse._SubParsersAction)), None)
        if action is None:
            found[words] = parser
            return
        for name, sub in action.choices.items():
            walk(f"{words} {name}".strip(), sub)

    walk("", build_parser())
    return found


def test_version() -> None:
    result = rlmesh_cmd("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rlmesh {rlmesh.__version__}"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_command_has_help_examples_and_takes_global_flags_after_it(name: str) -> None:
    sub = subcommands()[name]
    assert sub.description and sub.epilog and sub.epilog.startswith("examples:")
    assert f"rlmesh {name}" in sub.epilog
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"rlmesh {name} {action.option_strings or action.dest}: no help"
    flags = ["-v", "--log-level", "warning"]
    required = [a for a in sub._actions if a.required or (not a.option_strings
                                                           and a.nargs not in ("?", "*"))]
    positional = ["x"] * len([a for a in required if not a.option_strings])
    args = build_parser().parse_args([*name.split(), *positional, *flags])
    assert args.verbose is True and args.log_level == "warning"
    before = build_parser().parse_args(["-v", *name.split(), *positional])
    assert before.verbose is True


def test_serve_prints_one_startup_line_and_logs_sessions(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--address", address,
             "--num-envs", "1"], stdout=subprocess.DEVNULL, stderr=out)
    try:
        with RemoteEnv(address, connect_timeout=30) as env:
            env.reset(seed=0)
        deadline = time.monotonic() + 10
        while "disconnected" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.terminate()
        child.wait(10)
        stop_child(child)
    lines = log.read_text().splitlines()
    assert [line for line in lines if "serving" in line] == [
        f"rlmesh: serving CartPole-v1 (one env per session) on {address}; Ctrl+C stops"]
    assert any(re.fullmatch(r"rlmesh: session 1: client rlmesh-python/\S+ connected", line)
               for line in lines), lines
    assert "rlmesh: session 1: disconnected: the client closed it" in lines


def test_sessions_are_logged_at_info_through_logging(serve: Any,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    with caplog.at_level("INFO", logger="rlmesh.server"):
        with RemoteEnv(server.address) as env:
            env.reset(seed=0)
        rlmesh.probe(server.address)  # a probe is not a session: not logged
        deadline = time.monotonic() + 5
        while "disconnected" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    messages = [r.getMessage() for r in caplog.records if r.name == "rlmesh.server"]
    assert sum("connected" in m and "disconnected" not in m for m in messages) == 1
    assert sum("disconnected" in m for m in messages) == 1


def test_ping_wait_waits_for_a_starting_server() -> None:
    address = f"127.0.0.1:{free_port()}"
    down = rlmesh_cmd("ping", address)
    assert down.returncode == 1 and down.stderr.startswith("rlmesh: error:")
    servers: list[rlmesh.EnvServer] = []

    def start_late() -> None:
        time.sleep(1.0)
        servers.append(rlmesh.EnvServer(lambda: gym.make("CartPole-v1"), address).start())

    starter = threading.Thread(target=start_late)
    starter.start()
    try:
        waited = rlmesh_cmd("ping", address, "--wait", "30")
    finally:
        starter.join()
        for server in servers:
            server.shutdown()
    assert waited.returncode == 0, waited.stderr
    assert f"{address}: serving CartPole-v1" in waited.stdout
    late = rlmesh_cmd("ping", f"127.0.0.1:{free_port()}", "--wait", "0.5")
    assert late.returncode == 1 and "kept trying for 0.5s" in late.stderr


def test_an_env_that_rejects_its_kwargs_is_a_one_line_error() -> None:
    result = rlmesh_cmd("serve", "CartPole-v1", "--address", "127.0.0.1:0", "--kwargs",
                        '{"no_such_option": 1}')
    assert result.returncode == 1
    assert result.stderr.startswith("rlmesh: error: TypeError:")
    assert "no_such_option" in result.stderr and "Traceback" not in result.stderr
    assert "-v" in result.stderr  # how to see the traceback


def test_serve_no_remote_attributes(spawn: Any) -> None:
    allowed = spawn("CartPole-v1")
    refused = spawn("CartPole-v1", extra_args=["--no-remote-attributes"])
    with RemoteEnv(allowed.address) as env:
        assert env.unwrapped.gravity == 9.8
    with RemoteEnv(refused.address) as env:
        assert not hasattr(env.unwrapped, "gravity")
        with pytest.raises(rlmesh.NotAllowedError):
            env.get_wrapper_attr("gravity")


def test_bench_output_has_no_internal_labels() -> None:
    for script in Path(__file__).resolve().parents[2].glob("benchmarks/bench_*.py"):
        assert not re.search(r"issue[ -]\d", script.read_text()), script.name
