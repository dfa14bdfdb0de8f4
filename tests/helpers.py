"""Helpers shared by the unit and integration tests: strict comparisons, codec trips, spaces.

Import them as ``from tests.helpers import ...`` (``tests`` is a package, so pytest puts the
repository root on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces as gs

from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder

SpaceFactory = Callable[[], gs.Space[Any]]


# -- optional dependencies --------------------------------------------------------------------


def need(module: str) -> Any:
    """Import an optional dependency, or skip the test with the reason it is absent.

    The optional frameworks and env suites come with ``uv sync --all-groups``. CI sets
    ``RLMESH_REQUIRE_BACKENDS=1`` so that a missing one fails the test instead of skipping it.
    """
    if os.environ.get("RLMESH_REQUIRE_BACKENDS") == "1":
        return importlib.import_module(module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = ("PyTorch and Stable-Baselines3 install with pip (docs/install.md)"
               if module.split(".")[0] in _PIP_ONLY else
               "`uv sync --all-groups` installs the optional frameworks and env suites")
        pytest.skip(f"{module} is not installed ({exc}); {how}", allow_module_level=True)


_PIP_ONLY = {"torch", "stable_baselines3"}
"""Optional dependencies outside the uv groups (uv would fetch a multi-GB CUDA torch)."""


# -- sockets ----------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (nothing listens on it now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def close_after() -> Iterator[Callable[[Any], Any]]:
    """Body of a ``closing`` fixture: yields ``keep``; closes what it kept, newest first.

    A test module's fixture does ``yield from close_after()`` (close errors are ignored).
    """
    things: list[Any] = []

    def keep(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield keep
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            thing.close()


# -- processes (Linux /proc) ------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def live_children(pid: int) -> set[int]:
    """Running processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.add(int(entry))
    return found


def wait_dead(pids: list[int], within: float) -> list[int]:
    """Wait up to ``within`` seconds for every pid to be gone; returns those still alive."""
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def kill_stragglers(pids: list[int]) -> None:
    """SIGKILL whatever a failed test left running (only pids this test started)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Kill ``child`` if it still runs, reap it and close its output pipes."""
    if child.poll() is None:
        child.kill()
        child.wait(5)
    for stream in (child.stdout, child.stderr):
        if stream is not None:
            stream.close()


# -- the codec --------------------------------------------------------------------------------


def encode(value: Any, encoder: Encoder | None = None) -> tuple[bytes, bytearray]:
    """Encode ``value`` and join the body pieces into one freshly allocated bytearray."""
    header, buffers, body_len = (encoder or Encoder()).encode(value)
    body = bytearray()
    for piece in buffers:
        body += memoryview(piece).cast("B")
    assert len(body) == body_len, "body_len does not match the buffers"
    return header, body


def roundtrip(value: Any, encoder: Encoder | None = None, decoder: Decoder | None = None) -> Any:
    """Encode and decode ``value`` as a message would travel."""
    header, body = encode(value, encoder)
    # The transport hands the decoder a memoryview header and None for an empty body.
    return (decoder or Decoder()).decode(memoryview(header), body if body else None)


# -- strict value comparison ------------------------------------------------------------------


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_same(actual: Any, expected: Any, path: str = "value") -> None:
    """Strict recursive equality: container types, dtypes (with byte order), shapes, bytes.

    Dict key order and key types count; floats and complex numbers compare bit for bit (so
    ``nan`` equals the same ``nan`` and ``-0.0`` differs from ``0.0``).
    """
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__qualname__} != {type(expected).__qualname__} "
        f"({actual!r:.80} vs {expected!r:.80})")
    if isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.dtype.str == expected.dtype.str, f"{path}: dtype {actual.dtype.str} != " \
            f"{expected.dtype.str}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for (ka, va), (ke, ve) in zip(actual.items(), expected.items(), strict=True):
            assert_same(ka, ke, f"{path} key {ke!r}")
            assert_same(va, ve, f"{path}[{ke!r}]")
    elif isinstance(expected, (list, tuple)):  # includes GraphInstance (type checked above)
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, complex):
        assert _float_bits(actual.real) == _float_bits(expected.real), f"{path}: {actual!r}"
        assert _float_bits(actual.imag) == _float_bits(expected.imag), f"{path}: {actual!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def assert_same_values(actual: Any, expected: Any, path: str = "value", *,
                       key_order: bool = True) -> None:
    """Recursive strict equality for env results; object arrays compare item by item.

    Types, dtypes (with byte order), shapes and bytes must match; floats compare bit for bit.
    ``key_order=False`` compares dict keys as sets (values are still compared strictly).
    """
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__qualname__} != {type(expected).__qualname__} "
        f"({actual!r:.100} vs {expected!r:.100})")
    if isinstance(expected, np.ndarray):
        assert actual.dtype.str == expected.dtype.str, (
            f"{path}: dtype {actual.dtype.str} != {expected.dtype.str}")
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.kind == "O":
            for index in np.ndindex(expected.shape):
                assert_same_values(actual[index], expected[index], f"{path}[{index}]",
                                   key_order=key_order)
        else:
            assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, np.generic):
        assert actual.dtype.str == expected.dtype.str, (
            f"{path}: dtype {actual.dtype.str} != {expected.dtype.str}")
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        if key_order:
            assert list(actual) == list(expected), (
                f"{path}: keys {list(actual)} != {list(expected)}")
        else:
            assert set(actual) == set(expected), (
                f"{path}: keys {sorted(actual)} != {sorted(expected)}")
        for key in expected:
            assert_same_values(actual[key], expected[key], f"{path}[{key!r}]",
                               key_order=key_order)
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_values(a, e, f"{path}[{i}]", key_order=key_order)
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def action_sampler(space: gs.Space[Any], seed: int) -> gs.Space[Any]:
    """A seeded copy of ``space`` to draw actions from (the env's own space is left alone)."""
    sampler = copy.deepcopy(space)
    sampler.seed(seed)
    return sampler


# -- spaces -----------------------------------------------------------------------------------


def assert_space_identical(actual: gs.Space[Any], expected: gs.Space[Any],
                           path: str = "space") -> None:
    """``==`` plus everything ``==`` glosses over: exact bounds, dtypes, key and charset order."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    assert actual == expected, f"{path}: {actual} != {expected}"
    assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
    if isinstance(expected, gs.Box):
        for bound in ("low", "high"):
            a, e = getattr(actual, bound), getattr(expected, bound)
            assert a.dtype == e.dtype, f"{path}.{bound} dtype {a.dtype} != {e.dtype}"
            assert a.shape == e.shape, f"{path}.{bound} shape {a.shape} != {e.shape}"
            assert a.tobytes() == e.tobytes(), f"{path}.{bound}: {a!r} != {e!r} (bit-exact)"
    elif isinstance(expected, gs.Discrete):
        assert int(actual.n) == int(expected.n)
        assert int(actual.start) == int(expected.start)
    elif isinstance(expected, gs.MultiDiscrete):
        assert_same(actual.nvec, expected.nvec, f"{path}.nvec")
        assert_same(actual.start, expected.start, f"{path}.start")
    elif isinstance(expected, gs.MultiBinary):
        assert np.array_equal(np.asarray(actual.n), np.asarray(expected.n))
    elif isinstance(expected, gs.Text):
        assert actual.min_length == expected.min_length
        assert actual.max_length == expected.max_length
        assert actual._char_list == expected._char_list, f"{path}: charset order differs"
    elif isinstance(expected, gs.Dict):
        assert list(actual.spaces) == list(expected.spaces), (
            f"{path}: key order {list(actual.spaces)} != {list(expected.spaces)}")
        for key in expected.spaces:
            assert_space_identical(actual.spaces[key], expected.spaces[key], f"{path}[{key!r}]")
    elif isinstance(expected, (gs.Tuple, gs.OneOf)):
        assert len(actual.spaces) == len(expected.spaces)
        for i, (a, e) in enumerate(zip(actual.spaces, expected.spaces, strict=True)):
            assert_space_identical(a, e, f"{path}[{i}]")
    elif isinstance(expected, gs.Sequence):
        assert actual.stack == expected.stack
        assert_space_identical(actual.feature_space, expected.feature_space, f"{path}.feature")
    elif isinstance(expected, gs.Graph):
        assert_space_identical(actual.node_space, expected.node_space, f"{path}.node_space")
        if expected.edge_space is None:
            assert actual.edge_space is None
        else:
            assert_space_identical(actual.edge_space, expected.edge_space, f"{path}.edge_space")


class CustomSpace(gs.Space[int]):
    """A Space subclass rlmesh has no schema for."""

    def __init__(self) -> None:
        super().__init__((), np.int64)

    def sample(self, mask: Any = None, probability: Any = None) -> int:
        return 0

    def contains(self, x: Any) -> bool:
        return x == 0


i8, i16, i32, i64 = (np.iinfo(t) for t in (np.int8, np.int16, np.int32, np.int64))
u8, u64 = np.iinfo(np.uint8), np.iinfo(np.uint64)
inf = np.inf

# Every kind of Gymnasium space, with awkward bounds, dtypes, orders and nestings. Modules that
# test spaces parametrize over these and add their own specials (``{**SPACES, ...}``); the
# names are the test ids.
SPACES: dict[str, SpaceFactory] = {
    # Box
    "box-f16-inf": lambda: gs.Box(-inf, inf, (3,), np.float16),
    "box-f16-fractions": lambda: gs.Box(np.float16(-0.1), np.float16(1 / 3), (2, 2),
                                        np.float16),
    "box-f32-default": lambda: gs.Box(-1.0, 1.0, (4,)),
    "box-f32-mixed": lambda: gs.Box(np.array([-1.0, -inf, 0.0, -3.5], np.float32),
                                    np.array([1.0, 5.0, inf, 1e-30], np.float32),
                                    dtype=np.float32),
    "box-f64-exact": lambda: gs.Box(np.array([0.1, 1 / 3, -np.pi, 5e-324]),
                                    np.array([0.2, 2 / 3, np.e, 1.7976931348623157e308]),
                                    dtype=np.float64),
    "box-f32-scalar-shape": lambda: gs.Box(-2.5, 2.5, (), np.float32),
    "box-i8-extremes": lambda: gs.Box(int(i8.min), int(i8.max), (2, 2), np.int8),
    "box-i16-mixed": lambda: gs.Box(np.array([i16.min, -5, 0], np.int16),
                                    np.array([-1, 7, i16.max], np.int16), dtype=np.int16),
    "box-i32-extremes": lambda: gs.Box(int(i32.min), int(i32.max), (3,), np.int32),
    "box-i64-extremes": lambda: gs.Box(int(i64.min), int(i64.max), (3,), np.int64),
    "box-u8-image": lambda: gs.Box(0, 255, (4, 5, 3), np.uint8),
    "box-u64-extremes": lambda: gs.Box(0, int(u64.max), (2,), np.uint64),
    "box-bool": lambda: gs.Box(np.zeros(3, np.bool_), np.array([True, True, False]),
                               dtype=np.bool_),
    # Discrete
    "discrete": lambda: gs.Discrete(5),
    "discrete-start": lambda: gs.Discrete(3, start=10),
    "discrete-negative-start": lambda: gs.Discrete(3, start=-1),
    "discrete-very-negative": lambda: gs.Discrete(4, start=-(2**40)),
    "discrete-int32": lambda: gs.Discrete(7, start=-2, dtype=np.int32),
    # MultiDiscrete
    "multidiscrete": lambda: gs.MultiDiscrete([3, 4, 5]),
    "multidiscrete-2d-start": lambda: gs.MultiDiscrete(np.array([[2, 3], [4, 5]]),
                                                       start=np.array([[-1, 0], [2, -5]])),
    "multidiscrete-int32": lambda: gs.MultiDiscrete([5, 5], dtype=np.int32, start=[1, -2]),
    "multidiscrete-uint8": lambda: gs.MultiDiscrete([255, 2], dtype=np.uint8),
    # MultiBinary
    "multibinary": lambda: gs.MultiBinary(5),
    "multibinary-2d": lambda: gs.MultiBinary([2, 3]),
    # Text
    "text": lambda: gs.Text(5),
    "text-charset-order": lambda: gs.Text(8, min_length=2, charset="zyxwvu"),
    "text-unicode": lambda: gs.Text(4, min_length=0, charset="é✓\U0001f600ba"),
    # containers
    "dict-nested": lambda: gs.Dict({
        "pos": gs.Box(-1.0, 1.0, (2,), np.float64),
        "inner": gs.Dict({"a": gs.Discrete(3, start=-1),
                          "b": gs.Tuple((gs.MultiBinary(2), gs.Text(4, charset="dcba")))}),
        "flags": gs.MultiDiscrete([2, 2]),
    }),
    "dict-unsorted-keys": lambda: gs.Dict({"zeta": gs.Discrete(2), "alpha": gs.Discrete(9),
                                           "mu": gs.Box(0, 1, (1,))}, sort_keys=False),
    "dict-empty": lambda: gs.Dict({}),
    "tuple-nested": lambda: gs.Tuple((
        gs.Discrete(3),
        gs.Tuple((gs.Box(-1, 1, (2,), np.float64), gs.MultiDiscrete([2, 2]))),
        gs.Dict({"x": gs.Text(3), "y": gs.Tuple(())}),
    )),
    "tuple-empty": lambda: gs.Tuple(()),
    # Sequence
    "sequence-box": lambda: gs.Sequence(gs.Box(-1, 1, (2,)), stack=False),
    "sequence-discrete-stacked": lambda: gs.Sequence(gs.Discrete(4, start=-2), stack=True),
    "sequence-box-stacked": lambda: gs.Sequence(gs.Box(-1, 1, (2, 2), np.float64), stack=True),
    "sequence-dict": lambda: gs.Sequence(gs.Dict({"a": gs.Discrete(2),
                                                  "b": gs.Box(0, 1, (1,))})),
    # Graph
    "graph-box-discrete": lambda: gs.Graph(gs.Box(-1, 1, (3,)), gs.Discrete(4)),
    "graph-discrete-box": lambda: gs.Graph(gs.Discrete(5, start=1),
                                           gs.Box(0, 1, (2,), np.float64)),
    "graph-no-edges": lambda: gs.Graph(gs.Discrete(5), None),
    "graph-box-no-edges": lambda: gs.Graph(gs.Box(-1, 1, (2,)), None),
    # OneOf
    "oneof": lambda: gs.OneOf((gs.Discrete(3), gs.Box(-1, 1, (2,)))),
    "oneof-nested": lambda: gs.OneOf((
        gs.Dict({"a": gs.Discrete(2), "b": gs.MultiBinary(3)}),
        gs.Tuple((gs.Text(2), gs.Discrete(2, start=-1))),
        gs.MultiDiscrete([3, 3]),
    )),
    # everything at once
    "kitchen-sink": lambda: gs.Dict({
        "obs": gs.Tuple((gs.Box(-inf, inf, (3,), np.float16), gs.Discrete(2))),
        "seq": gs.Sequence(gs.OneOf((gs.Discrete(2), gs.Text(3)))),
        "graph": gs.Graph(gs.Box(0, 1, (2,)), gs.Discrete(3)),
        "choice": gs.OneOf((gs.Sequence(gs.Box(0, 1, (1,)), stack=True),
                            gs.MultiBinary([2, 2]))),
    }),
}


Outcome = tuple[int, float, bool, bool]
"""``(steps, reward, terminated, truncated)`` of one episode."""


def hand_loop(seeds: Sequence[int], choose: Callable[[Any, Any], Any], *,
              max_steps: int | None = None,
              make: Callable[[], gym.Env[Any, Any]] | None = None) -> list[Outcome]:
    """Episodes played with Gymnasium directly; ``choose(observation, sampler) -> action``.

    ``sampler`` is a copy of the action space seeded with the episode seed, as the random
    baseline does.
    """
    env = make() if make is not None else gym.make("CartPole-v1")
    outcomes = []
    try:
        for seed in seeds:
            observation, _ = env.reset(seed=seed)
            sampler = action_sampler(env.action_space, seed)
            steps, total = 0, 0.0
            while True:
                observation, reward, terminated, truncated, _ = env.step(
                    choose(observation, sampler))
                steps += 1
                total += float(reward)
                if terminated or truncated:
                    break
                if max_steps is not None and steps >= max_steps:
                    truncated = True
                    break
            outcomes.append((steps, total, bool(terminated), bool(truncated)))
    finally:
        env.close()
    return outcomes
