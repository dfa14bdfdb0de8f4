"""Hostile attribute requests: typed answers, no crash, no effect on other sessions.

Raw ``GET_ATTR``, ``CALL`` and ``SET_ATTR`` frames (``docs/protocol.md`` section 13) that no
rlmesh client would send: names of the wrong type, huge or not identifiers, private names,
refused names, malformed and deeply nested arguments, values the decoder refuses, requests
before the handshake and pipelined bursts. Each must be answered with the code the protocol
names (and a fatal one must close that connection) while a witness session on the same server
steps in lockstep with a local CartPole, undisturbed; at the end the server is alive, has
logged no internal error, and serves new sessions.

``tests/faults/test_fuzz.py`` fuzzes the same ops against its protocol model; this module pins
the cases one by one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import msgpack
import numpy as np
import pytest

import rlmesh
from rlmesh.numpy import RemoteEnv
from rlmesh.testing import ServerProcess
from tests.faults.test_fuzz import (
    _BAD_UNICODE,
    IO_TIMEOUT,
    PREFIX,
    Peer,
    Witness,
    _pack,
    frame,
    raw_frame,
)

GET, CALL, SET = 10, 11, 12
HELLO = [0, 0, {"rlmesh": 1, "client": "attribute-faults"}]
OK = "ok"
DEEP = b"\x91" * 900 + b"\xc0"  # a list nested 900 levels deep, as raw msgpack


def _deep_call(name: bytes, where: str) -> bytes:
    """A CALL header with a 900-level list among the arguments or the keyword arguments."""
    head = b"\x95\x0b\x07" + bytes([0xA0 + len(name)]) + name
    if where == "args":
        return head + b"\x91" + DEEP + b"\x80"
    return head + b"\x90" + b"\x81\xa1k" + DEEP


# name: (request header after HELLO and RESET, the code owed, whether the session goes on)
CASES: dict[str, tuple[bytes, str, bool]] = {
    "get-int-name": (_pack([GET, 7, 12]), "not_allowed", True),
    "get-none-name": (_pack([GET, 7, None]), "not_allowed", True),
    "get-bytes-name": (_pack([GET, 7, b"x_threshold"]), "not_allowed", True),
    "get-list-name": (_pack([GET, 7, ["x_threshold"]]), "not_allowed", True),
    "get-map-name": (_pack([GET, 7, {"x_threshold": 1}]), "not_allowed", True),
    "get-bigint-name": (frame([GET, 7, 2**70])[PREFIX.size:], "not_allowed", True),
    "get-array-name": (frame([GET, 7, np.array(["x_threshold"])])[PREFIX.size:],
                       "not_allowed", True),
    "get-huge-bytes-name": (_pack([GET, 7, b"x" * 1_000_000]), "not_allowed", True),
    "get-huge-identifier": (_pack([GET, 7, "x" * 1_000_000]), "no_attribute", True),
    "get-huge-non-identifier": (_pack([GET, 7, "a b" * 300_000]), "not_allowed", True),
    "get-empty-name": (_pack([GET, 7, ""]), "not_allowed", True),
    "get-nul-name": (_pack([GET, 7, "x\x00"]), "not_allowed", True),
    "get-dotted-name": (_pack([GET, 7, "unwrapped.gravity"]), "not_allowed", True),
    "get-private": (_pack([GET, 7, "_np_random"]), "not_allowed", True),
    "get-dunder": (_pack([GET, 7, "__class__"]), "not_allowed", True),
    "get-dunder-dict": (_pack([GET, 7, "__dict__"]), "not_allowed", True),
    "get-missing": (_pack([GET, 7, "no_such_attribute"]), "no_attribute", True),
    "get-generator": (_pack([GET, 7, "np_random"]), "encode_error", True),
    "get-object": (_pack([GET, 7, "unwrapped"]), "encode_error", True),
    "get-value": (_pack([GET, 7, "x_threshold"]), OK, True),
    "get-no-name": (_pack([GET, 7]), "protocol_error", False),
    "get-extra-argument": (_pack([GET, 7, "x_threshold", 1]), "protocol_error", False),
    "call-reset": (_pack([CALL, 7, "reset", [], {}]), "not_allowed", True),
    "call-step": (_pack([CALL, 7, "step", [0], {}]), "not_allowed", True),
    "call-close": (_pack([CALL, 7, "close", [], {}]), "not_allowed", True),
    "call-accessor": (_pack([CALL, 7, "get_wrapper_attr", ["_np_random"], {}]),
                      "not_allowed", True),
    "call-setter": (_pack([CALL, 7, "set_wrapper_attr", ["step", 1], {}]), "not_allowed",
                    True),
    "call-dunder": (_pack([CALL, 7, "__init__", [], {}]), "not_allowed", True),
    "call-value-with-arguments": (_pack([CALL, 7, "x_threshold", [1, 2], {"k": 3}]), OK,
                                  True),
    "call-wrong-arguments": (_pack([CALL, 7, "render", [1, 2, 3], {"nope": 1}]),
                             "env_error", True),
    "call-deep-args": (_deep_call(b"x_threshold", "args"), OK, True),
    "call-deep-kwargs": (_deep_call(b"render", "kwargs"), "env_error", True),
    "call-tuple-args": (frame([CALL, 7, "render", (1, 2), {}])[PREFIX.size:],
                        "protocol_error", False),
    "call-args-not-array": (_pack([CALL, 7, "render", "abc", {}]), "protocol_error", False),
    "call-kwargs-not-map": (_pack([CALL, 7, "render", [], []]), "protocol_error", False),
    "call-int-keyword": (_pack([CALL, 7, "render", [], {1: 2}]), "protocol_error", False),
    "call-missing-kwargs": (_pack([CALL, 7, "render", []]), "protocol_error", False),
    "set-contract": (_pack([SET, 7, "observation_space", 1]), "not_allowed", True),
    "set-spec": (_pack([SET, 7, "spec", None]), "not_allowed", True),
    "set-render": (_pack([SET, 7, "render", None]), "not_allowed", True),
    "set-step": (_pack([SET, 7, "step", 1]), "not_allowed", True),
    "set-wrapped-env": (_pack([SET, 7, "env", 1]), "not_allowed", True),
    "set-private": (_pack([SET, 7, "_max_episode_steps", 1]), "not_allowed", True),
    "set-dunder": (_pack([SET, 7, "__class__", 1]), "not_allowed", True),
    "set-read-only-property": (_pack([SET, 7, "unwrapped", 1]), "env_error", True),
    "set-deep-value": (b"\x94\x0c\x07\xa9fuzz_note" + DEEP, OK, True),
    "set-bad-unicode-value": (_pack([SET, 7, "fuzz_note", _BAD_UNICODE]), "protocol_error",
                              False),
    "set-unknown-ext-value": (_pack([SET, 7, "fuzz_note", msgpack.ExtType(99, b"x")]),
                              "protocol_error", False),
    "set-no-value": (_pack([SET, 7, "gravity"]), "protocol_error", False),
}
REPLY_BUDGET = 4096
"""No attribute reply may be larger than this (a huge name must not be echoed back)."""


def _code(reply: Any) -> str:
    assert type(reply) is list and len(reply) >= 2, reply
    return OK if reply[0] == 0 else str(reply[2]["code"])


class Served:
    """A CartPole server in a child process with a witness session stepping in lockstep."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        host, _, port = server.address.rpartition(":")
        self.sockaddr = (host, int(port))
        self.witness = Witness(RemoteEnv(server.address, connect_timeout=5, timeout=IO_TIMEOUT),
                               seed=11)

    def session(self) -> Peer:
        """A raw session, handshaken and reset."""
        peer = Peer(self.sockaddr)
        peer.send(frame(HELLO) + frame([1, 1, 0, None]))
        assert _code(peer.reply()) == OK and _code(peer.reply()) == OK
        return peer

    def finish(self) -> None:
        self.witness.check(steps=20)
        assert self.server.process.poll() is None, "the server process died"
        assert rlmesh.probe(self.server.address, timeout=IO_TIMEOUT)["kind"] == "env"
        with RemoteEnv(self.server.address, timeout=IO_TIMEOUT) as env:
            env.reset(seed=0)
            assert env.unwrapped.x_threshold == 2.4
        log_dir = getattr(self.server, "_tmpdir", None)
        with contextlib.suppress(FileNotFoundError, TypeError), \
                open(f"{log_dir}/stderr.log") as log:
            text = log.read()
            assert "internal error" not in text, text[text.index("internal error") - 300:]


@pytest.fixture
def served(spawn: Callable[..., ServerProcess]) -> Iterator[Served]:
    target = Served(spawn("CartPole-v1"))
    try:
        yield target
    finally:
        with contextlib.suppress(Exception):
            target.witness.close()


def test_hostile_attribute_requests_get_typed_answers(served: Served) -> None:
    for name, (header, code, goes_on) in CASES.items():
        with served.session() as peer:
            peer.send(raw_frame(header))
            reply = peer.reply()
            assert reply is not None, f"{name}: the server hung up without a reply"
            assert _code(reply) == code, f"{name}: {reply!r:.300}"
            # (an undecodable request has no id the server could echo)
            assert reply[1] == 7 or (code == "protocol_error" and reply[1] is None), name
            if code != OK:
                error = reply[2]
                assert error["fatal"] is (not goes_on), f"{name}: {error}"
                assert len(error["message"]) < REPLY_BUDGET, f"{name}: long message"
            if goes_on:
                peer.send(frame([5, 8, "still there"]) + frame([2, 9, 1]))
                assert peer.reply() == [0, 8, "still there"], name
                step = peer.reply()
                assert _code(step) == OK and step[2].shape == (4,), f"{name}: {step!r:.200}"
            else:
                assert peer.reply() is None, f"{name}: the session should have ended"
        served.witness.check(steps=2)
    served.finish()


def test_attribute_requests_before_the_handshake_are_refused(served: Served) -> None:
    for request in ([GET, 0, "x_threshold"], [CALL, 0, "render", [], {}],
                    [SET, 0, "gravity", 1.0]):
        with Peer(served.sockaddr) as peer:
            peer.send(frame(request))
            reply = peer.reply()
            assert _code(reply) == "protocol_error" and reply[2]["fatal"] is True
            assert peer.reply() is None
    served.finish()


def test_a_pipelined_burst_is_answered_in_order(served: Served) -> None:
    requests = [[GET, 10 + i, name] for i, name in
                enumerate(["x_threshold", "_secret", "nope", "np_random", 5])]
    requests += [[SET, 20, "gravity", "not a number"], [CALL, 21, "has_reset", [], {}],
                 [2, 22, 0]]
    with served.session() as peer:
        peer.send(b"".join(frame(r) for r in requests))
        codes = [_code(peer.reply()) for _ in requests]
    # The bad gravity is the session's own env's problem: its next step fails, typed.
    assert codes == [OK, "not_allowed", "no_attribute", "encode_error", "not_allowed", OK, OK,
                     "env_error"]
    served.finish()


def test_a_shared_instance_survives_hostile_sets(serve: Callable[..., rlmesh.EnvServer]) -> None:
    env = gym.make("CartPole-v1")
    server = serve(env)
    space = env.observation_space
    host, _, port = server.address.rpartition(":")
    for request in ([SET, 2, "observation_space", 1], [SET, 2, "_max_episode_steps", 1],
                    [SET, 2, "__class__", 1], [CALL, 2, "set_wrapper_attr", ["spec", 1], {}],
                    [SET, 2, "metadata", {}], [SET, 2, "env", None]):
        with Peer((host, int(port))) as peer:
            peer.send(frame(HELLO) + frame(request) + frame([4, 3]))
            assert _code(peer.reply()) == OK
            assert _code(peer.reply()) == "not_allowed", request
            assert _code(peer.reply()) == OK  # CLOSE
    assert env.observation_space is space and env.get_wrapper_attr("_max_episode_steps") == 500
    assert type(env) is gym.wrappers.TimeLimit and env.metadata["render_fps"] == 50
    with RemoteEnv(server.address, timeout=IO_TIMEOUT) as remote:
        local = gym.make("CartPole-v1")
        np.testing.assert_array_equal(remote.reset(seed=4)[0], local.reset(seed=4)[0])
        np.testing.assert_array_equal(remote.step(1)[0], local.step(1)[0])


def test_a_server_without_remote_attributes_refuses_every_op(
        serve: Callable[..., rlmesh.EnvServer]) -> None:
    server = serve("CartPole-v1", options=rlmesh.ServeOptions(remote_attributes=False))
    host, _, port = server.address.rpartition(":")
    with Peer((host, int(port))) as peer:
        peer.send(frame(HELLO))
        assert peer.reply()[2]["capabilities"] == []
        for request in ([GET, 1, "x_threshold"], [CALL, 2, "render", [], {}],
                        [SET, 3, "gravity", 1.0], [GET, 4, "_secret"]):
            peer.send(frame(request))
            reply = peer.reply()
            assert _code(reply) == "not_allowed" and "remote_attributes" in reply[2]["message"]
        peer.send(frame([GET, 5]))  # malformed is malformed either way
        assert _code(peer.reply()) == "protocol_error"
