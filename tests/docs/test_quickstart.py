"""The quickstart examples and ``rlmesh demo``, run as real processes from the repo root."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import pytest

from tests.support.net import free_port, wait_until_listening
from tests.support.processes import kill_group

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "python" / "quickstart"



# -- helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def example_server(script: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[Any],
                                                                  Path]]:
    """Run ``script --address 127.0.0.1:PORT`` from the repo root until the block ends."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = tmp_path / f"{script}.{port}.log"
    out: IO[bytes]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(QUICKSTART / script), "--address", address],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_listening(process, port, log)
        yield address, process, log
    finally:
        kill_group(process)


def run_script(script: str, *args: str) -> list[str]:
    result = subprocess.run([sys.executable, str(QUICKSTART / script), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    assert result.stdout.endswith("\n")
    return result.stdout.splitlines()


def take_eval_many_block(lines: list[str], address: str, max_steps: int) -> tuple[list[str],
                                                                                  str]:
    """Check one address's block of eval_many output; return (rewards, ending), consume it."""
    a = re.escape(address)
    assert lines, f"no output for {address}"
    assert lines.pop(0) == f"{address}: connected"
    rewards: list[str] = []
    while lines:
        match = re.fullmatch(rf"{a}: step=(\d+) reward=(-?\d+\.\d{{3}})", lines[0])
        if not match:
            break
        lines.pop(0)
        assert int(match.group(1)) == len(rewards) + 1, "step numbers must count up from 1"
        rewards.append(match.group(2))
    assert lines, f"{address}: no closing line"
    ending = lines.pop(0)
    if ending == f"{address}: episode complete":
        assert 1 <= len(rewards) <= max_steps
    else:
        assert ending == f"{address}: stopped after {max_steps} steps", ending
        assert len(rewards) == max_steps
    return rewards, ending


def eval_many_block(address: str, steps: int, ending: str) -> list[str]:
    """eval_many's exact output for one endpoint that pays 1.0 a step."""
    return [f"{address}: connected",
            *(f"{address}: step={step} reward=1.000" for step in range(1, steps + 1)),
            f"{address}: {ending}"]


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The two quickstart servers: (CartPole-v1 address, CounterEnv address)."""
    tmp = tmp_path_factory.mktemp("quickstart")
    with example_server("serve_gymnasium.py", tmp) as (cartpole, _, _), \
            example_server("serve.py", tmp) as (counter, _, _):
        yield cartpole, counter


# -- eval_many.py -----------------------------------------------------------------------------


def test_eval_many_drives_both_endpoints(endpoints: tuple[str, str]) -> None:
    cartpole, counter = endpoints
    lines = run_script("eval_many.py", cartpole, counter)
    rewards, _ = take_eval_many_block(lines, cartpole, 64)
    assert set(rewards) == {"1.000"}  # CartPole pays 1 per step
    rewards, ending = take_eval_many_block(lines, counter, 64)
    assert rewards == ["1.000", "1.000", "1.000"]
    assert ending == f"{counter}: episode complete"
    assert lines == [], f"unexpected trailing output: {lines}"


def test_eval_many_counter_env_exact_output(endpoints: tuple[str, str]) -> None:
    _, counter = endpoints
    assert run_script("eval_many.py", counter) == eval_many_block(counter, 3, "episode complete")


def test_eval_many_max_steps(endpoints: tuple[str, str]) -> None:
    cartpole, counter = endpoints
    lines = run_script("eval_many.py", "--max-steps", "2", cartpole, counter)
    assert lines == [*eval_many_block(cartpole, 2, "stopped after 2 steps"),
                     *eval_many_block(counter, 2, "stopped after 2 steps")]


# -- eval.py ------------------------------------------------------------------------------------


def test_eval_single_endpoint(endpoints: tuple[str, str]) -> None:
    cartpole, _ = endpoints
    lines = run_script("eval.py", cartpole)
    assert len(lines) == 2, lines
    assert lines[0] == f"{cartpole}: connected to CartPole-v1"
    match = re.fullmatch(
        rf"{re.escape(cartpole)}: (episode complete|stopped) after (\d+) steps, "
        r"return (\d+\.\d{3})", lines[1])
    assert match, lines[1]
    steps = int(match.group(2))
    assert float(match.group(3)) == steps  # 1.0 per CartPole step
    assert 1 <= steps <= 64
    if match.group(1) == "stopped":
        assert steps == 64


def test_eval_single_custom_endpoint(endpoints: tuple[str, str]) -> None:
    _, counter = endpoints
    assert run_script("eval.py", counter) == [
        f"{counter}: connected to a custom env",
        f"{counter}: episode complete after 3 steps, return 3.000",
    ]


def test_eval_single_endpoint_max_steps(endpoints: tuple[str, str]) -> None:
    cartpole, _ = endpoints
    assert run_script("eval.py", cartpole, "--max-steps", "2") == [
        f"{cartpole}: connected to CartPole-v1",
        f"{cartpole}: stopped after 2 steps, return 2.000",
    ]


# -- the servers themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(("script", "name"), [("serve_gymnasium.py", "CartPole-v1"),
                                              ("serve.py", "a custom env")])
def test_example_server_banner_and_ctrl_c(tmp_path: Path, script: str, name: str) -> None:
    with example_server(script, tmp_path) as (address, process, log):
        lines = run_script("eval_many.py", "--max-steps", "1", address)
        assert lines[0] == f"{address}: connected"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        banner = [line for line in log.read_text().splitlines() if "serving" in line]
        assert banner == [f"rlmesh: serving {name} (one instance, one session at a time) on "
                          f"{address}; Ctrl+C stops"]  # one line, from EnvServer.serve()


# -- rlmesh demo --------------------------------------------------------------------------------


def _expected_demo_cartpole(max_steps: int = 64) -> str:
    """What the demo's evaluator does for CartPole-v1, computed with a local env."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    env.action_space.seed(0)
    total = 0.0
    for step in range(1, max_steps + 1):
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += float(reward)
        if terminated or truncated:
            return f"episode complete after {step} steps, return {total:.1f}"
    return f"stopped after {max_steps} steps, return {total:.1f}"


def test_demo_runs_both_endpoints() -> None:
    process = subprocess.Popen([sys.executable, "-m", "rlmesh", "demo"], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=45)
    finally:
        kill_group(process)
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "starting endpoints: CartPole-v1, rlmesh.envs:CounterEnv"
    addresses = []
    for line, target in zip(lines[1:3], ["CartPole-v1", "rlmesh.envs:CounterEnv"],
                            strict=True):
        match = re.fullmatch(rf"  {re.escape(target)} serving on (127\.0\.0\.1:\d+) "
                             r"\(pid \d+\)", line)
        assert match, line
        addresses.append(match.group(1))
    cartpole, counter = addresses
    assert lines[3] == "evaluating both concurrently, one thread per endpoint, random actions:"
    assert lines[4:] == [
        f"{cartpole}: connected",
        f"{cartpole}: {_expected_demo_cartpole()}",
        f"{counter}: connected",
        f"{counter}: episode complete after 3 steps, return 3.0",
        "done: both endpoints stopped",
    ]
    # The demo's endpoints are gone with it.
    for address in addresses:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])),
                                     timeout=1).close()


# -- model.py and seeded_model.py (the reference's quickstart has both) ---------------------------


def test_model_plays_episodes_on_an_endpoint(endpoints: tuple[str, str]) -> None:
    _, counter = endpoints
    assert run_script("model.py", "--address", counter, "--episodes", "2") == [
        "episode 0: 3 steps, return 3.000",
        "episode 1: 3 steps, return 3.000",
    ]


def test_seeded_model_prints_its_context() -> None:
    assert run_script("seeded_model.py") == [
        "reset with seed 7",
        "  step 0 of the episode seeded 7: observation [0]",
        "  step 1 of the episode seeded 7: observation [1]",
        "reset with seed 8",
        "  step 0 of the episode seeded 8: observation [0]",
        "  step 1 of the episode seeded 8: observation [1]",
        "episode seeds: [7, 8]",
    ]
