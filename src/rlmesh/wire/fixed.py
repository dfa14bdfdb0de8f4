"""Fixed-shape step frames: a STEP request and its reply, without the general codec.

When a contract fixes its shapes (a Box or Discrete action small enough to travel inline; a
Box observation; for a vector env, the batches of both), every STEP request and its usual
reply share one layout each, apart from the request id and the bytes of the values:

* request ``[2, rid, action]``: the action as a NumPy scalar of the space's dtype, a Python
  int (Discrete), or an array of the space's dtype and shape;
* reply ``[0, rid, obs, reward, terminated, truncated, {}]``: the observation array, then a
  reward and two Python bools (one env), or three arrays (a vector env). One env's reward is a
  Python float, or a NumPy ``float64`` or ``float32`` scalar (Pendulum's and MuJoCo's envs
  return those), which arrives as the same NumPy scalar. An observation too large to travel
  inline (an image) travels as the reply's body, as the general encoder sends it; the rest
  of the reply stays in the header.

:class:`StepFrames` is compiled from the spaces once per connection, with the general
:class:`~rlmesh.wire.encoder.Encoder` encoding a sample of each layout, so its templates are
the general encoder's own bytes. Its encoders return byte for byte what the general encoder
returns, and its decoders return exactly what the general decoder returns, or ``None`` for a
frame or value of another layout: the caller then takes the general path, which also reports
malformed input. The wire does not change: a peer without the fast path reads and writes the
same frames. See ``docs/protocol.md`` section 3 for the format.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack
import numpy as np
from gymnasium import spaces as gs

from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fields import (
    RID_FORMATS,
    RID_SIZES,
    Field,
    array_field,
    body_of,
    fixed_box,
    read_rid,
    rid_bytes,
    scalar_field,
)
from rlmesh.wire.schema import schema_to_space

__all__ = ["StepFrames", "contract_frames", "step_frames"]

_OP_STEP: Final = 2
_REQUEST: Final = b"\x93\x02"
"""A 3-item array whose first item is op 2 (STEP)."""
_REPLY: Final = b"\x97\x00"
"""A 7-item array whose first item is status 0 (OK)."""
_EMPTY_MAP: Final = 0x80
_FLAGS: Final = (b"\xc2", b"\xc3")
_FLOAT: Final = 0xCB
_DOUBLE: Final = struct.Struct(">d")
_REWARD_SCALARS: Final = (np.float64, np.float32)
"""The NumPy scalar types one env's reward may have in a fixed reply (besides a float)."""
_packb = msgpack.packb
_unpackb = msgpack.unpackb


class StepFrames:
    """The fixed layouts of one contract's STEP requests and replies (see the module).

    Build one with :func:`step_frames`. Not thread-safe (as the codec it stands in for).
    """

    def __init__(self, action: Field, scalar: Field | None, ints: bool, obs: Field,
                 flags: tuple[Field, Field, Field] | None,
                 rewards: tuple[Field, ...] = ()) -> None:
        self.action = action
        """The action field (a vector env's batch of actions)."""
        self.scalar = scalar
        """A Discrete action's NumPy scalar form (``None``: no scalar actions)."""
        self.scalar_type = scalar.dtype.type if scalar is not None else None
        """A Discrete space's NumPy scalar type (``None``: no scalar actions)."""
        self.ints = ints
        """Whether a Python int is an action (a Discrete space)."""
        self.obs = obs
        """The observation field (a vector env's batch); it may travel in the body."""
        self.batched = flags
        """The reward, terminated and truncated arrays of a vector env (``None``: one env)."""
        self.rewards = rewards if flags is None else ()
        """One env's NumPy scalar rewards (besides a Python float): a field per dtype."""
        self._reward_forms = {form.dtype.type: form for form in self.rewards}
        # The whole reply, by the width of its request id and its size: the array fields as
        # (prefix, bytes) pairs (no bytes for an observation in the body), then a reward and
        # two bools (one env), and the empty info map; with the NumPy scalar form of the
        # reward that makes it (None: a float).
        fields = "".join(f"{len(f.prefix)}s{f.inline}s" for f in (obs, *(flags or ())))
        tails: list[tuple[str, Field | None]] = [("BdBBB" if flags is None else "B", None)]
        tails += [(f"{len(f.prefix)}s{f.nbytes}sBBB", f) for f in self.rewards]
        self._replies: dict[tuple[int, int], tuple[struct.Struct, Field | None]] = {}
        for width, code in RID_FORMATS.items():
            for tail, form in tails:
                layout = struct.Struct(f">2s{code}{fields}{tail}")
                self._replies.setdefault((width, layout.size), (layout, form))
        self._arrays = (obs, *(flags or ()))
        self.reply_layout: tuple[Any, ...] = (
            tuple(a.shape for a in self._arrays) + tuple(a.dtype for a in self._arrays))
        """The shapes, then the dtypes, of a reply's arrays (the observation alone, or the
        observations, rewards and both flags of a vector env): what the values' must equal
        (tuples compare item by item, identity first)."""
        self._prefixes = tuple(f.prefix for f in self._arrays)
        # The whole request, by the width of its id and its length: the action's
        # (prefix, bytes) and how its bytes become the value the decoder returns.
        self._requests: dict[tuple[int, int], list[tuple[struct.Struct, bytes, Any]]] = {}
        forms = [(action, action.decode_bytes)]
        if scalar is not None:
            forms.append((scalar, scalar.decode_scalar))
        for width, code in RID_FORMATS.items():
            for field, read in forms:
                layout = struct.Struct(f">2s{code}{len(field.prefix)}s{field.nbytes}s")
                self._requests.setdefault((width, layout.size), []).append(
                    (layout, field.prefix, read))

    # -- requests (the client encodes, the server decodes) --------------------------------

    def encode_request(self, rid: Any, action: Any) -> bytes | None:
        """The header of ``[STEP, rid, action]``, or ``None`` if not of a fixed layout."""
        rid_code = rid_bytes(rid)
        if rid_code is None:
            return None
        kind = type(action)
        body: bytes
        if kind is self.scalar_type:
            assert self.scalar is not None
            body = self.scalar.prefix + action.tobytes()
        elif kind is np.ndarray:
            encoded = self.action.encode(action)
            if encoded is None:
                return None
            body = encoded
        elif kind is int and self.ints and -(1 << 63) <= action < (1 << 64):
            body = bytes(_packb(action))
        else:
            return None
        return _REQUEST + rid_code + body

    def decode_request(self, header: bytes | memoryview) -> list[Any] | None:
        """``[STEP, rid, action]`` from a request header of a fixed layout, else ``None``."""
        if len(header) < 4:
            return None
        if type(header) is not bytes:
            header = bytes(header)
        first = header[2]
        width = 1 if first < 0x80 else RID_SIZES.get(first, 0)
        for layout, prefix, read in self._requests.get((width, len(header)), ()):
            head, rid, got, data = layout.unpack(header)
            if head == _REQUEST and got == prefix:
                return [_OP_STEP, rid, read(data)]
        if self.ints and width and 0 < len(header) - 2 - width <= 9 \
                and header[:2] == _REQUEST:
            pos = 2 + width
            rid = read_rid(header, 2)[0]
            first = header[pos]
            if first < 0x80 or first >= 0xE0 or 0xCC <= first <= 0xD3:
                try:
                    value = _unpackb(header[pos:])
                except Exception:  # (truncated, or more than one value: the general path's)
                    return None
                return [_OP_STEP, rid, value]
        return None

    # -- replies (the server encodes, the client decodes) ---------------------------------

    def encode_reply(self, reply: list[Any]) -> tuple[bytes, list[Any], int] | None:
        """``[OK, rid, obs, reward, terminated, truncated, {}]`` encoded, or ``None``.

        Returns:
            ``(header, buffers, body_len)`` as :meth:`Encoder.encode` returns them (the
            observation the body's one piece where it travels there), or ``None`` for a
            reply of another layout.
        """
        if len(reply) != 7 or reply[0] != 0 or type(reply[0]) is not int:
            return None
        info = reply[6]
        if type(info) is not dict or info:
            return None
        rid_code = rid_bytes(reply[1])
        if rid_code is None:
            return None
        if self.batched is None:
            obs = self.obs.encode(reply[2])
            reward, terminated, truncated = reply[3], reply[4], reply[5]
            if obs is None or type(terminated) is not bool or type(truncated) is not bool:
                return None
            kind = type(reward)
            if kind is float:
                mark, value = b"\xcb", _DOUBLE.pack(reward)
            else:
                form = self._reward_forms.get(kind)
                if form is None:
                    return None
                mark, value = form.prefix, reward.tobytes()
            header = b"".join((_REPLY, rid_code, obs, mark, value, _FLAGS[terminated],
                               _FLAGS[truncated], b"\x80"))
            return self._with_body(header, reply[2])
        _, _, obs, rewards, terminated, truncated, _ = reply
        ndarray = np.ndarray
        if type(obs) is not ndarray or type(rewards) is not ndarray \
                or type(terminated) is not ndarray or type(truncated) is not ndarray \
                or (obs.shape, rewards.shape, terminated.shape, truncated.shape, obs.dtype,
                    rewards.dtype, terminated.dtype, truncated.dtype) != self.reply_layout:
            return None
        obs_prefix, reward_prefix, terminated_prefix, truncated_prefix = self._prefixes
        header = b"".join((_REPLY, rid_code, obs_prefix,
                           b"" if self.obs.in_body else obs.tobytes(), reward_prefix,
                           rewards.tobytes(), terminated_prefix, terminated.tobytes(),
                           truncated_prefix, truncated.tobytes(), b"\x80"))
        return self._with_body(header, obs)

    def _with_body(self, header: bytes, obs: np.ndarray[Any, Any]
                   ) -> tuple[bytes, list[Any], int]:
        """A reply's header, and its observation as the body where it travels there."""
        if self.obs.in_body:
            return header, [body_of(obs)], self.obs.nbytes
        return header, [], 0

    def decode_reply(self, header: bytes | memoryview, body: Any) -> list[Any] | None:
        """The reply, decoded, if its frame has the fixed layout; else ``None``.

        A reply has a body exactly where its observation travels there, of its size.
        """
        if len(header) < 3:
            return None
        if body is None:
            if self.obs.in_body:
                return None
        elif not self.obs.in_body or len(body) != self.obs.nbytes:
            return None
        if type(header) is not bytes:
            header = bytes(header)
        first = header[2]
        found = self._replies.get((1 if first < 0x80 else RID_SIZES.get(first, 0),
                                   len(header)))
        if found is None:
            return None
        layout, form = found
        fields = layout.unpack(header)
        if fields[0] != _REPLY:
            return None
        return self._one_reply(fields, form, body) if self.batched is None else \
            self._vector_reply(fields, body)

    def _obs(self, data: bytes, body: Any) -> np.ndarray[Any, Any]:
        """The observation of a reply: its bytes in the header, or its body."""
        return self.obs.decode_body(body) if body is not None else self.obs.decode_bytes(data)

    def _vector_reply(self, fields: tuple[Any, ...], body: Any) -> list[Any] | None:
        """A vector env's reply from its fields: head, rid, (prefix, bytes) x 4, the info."""
        if fields[2:10:2] != self._prefixes or fields[10] != _EMPTY_MAP:
            return None
        _, rewards, terminated, truncated = self._arrays
        return [0, fields[1], self._obs(fields[3], body), rewards.decode_bytes(fields[5]),
                terminated.decode_bytes(fields[7]), truncated.decode_bytes(fields[9]), {}]

    def _one_reply(self, fields: tuple[Any, ...], form: Field | None, body: Any
                   ) -> list[Any] | None:
        """One env's reply from its fields, its reward of ``form`` (``None``: a float)."""
        _, rid, prefix, data, mark, reward, done, cut, end = fields
        if prefix != self.obs.prefix or end != _EMPTY_MAP or not 0xC2 <= done <= 0xC3 \
                or not 0xC2 <= cut <= 0xC3:
            return None
        if form is None:
            if mark != _FLOAT:
                return None
        elif mark != form.prefix:
            return None
        else:
            reward = form.decode_scalar(reward)
        return [0, rid, self._obs(data, body), reward, done == 0xC3, cut == 0xC3, {}]


def step_frames(observation_space: gs.Space[Any], action_space: gs.Space[Any],
                num_envs: int | None = None) -> StepFrames | None:
    """The fixed step layouts of these spaces, or ``None`` if their shapes are not fixed.

    Args:
        observation_space: The observation space (a vector env's batched one).
        action_space: The action space (a vector env's batched one).
        num_envs: A vector env's sub-env count (its rewards and flags are arrays of it);
            ``None`` for one env.
    """
    encoder = Encoder()
    if not fixed_box(observation_space):
        return None
    obs = array_field(encoder, np.dtype(observation_space.dtype),
                      tuple(observation_space.shape or ()), body=True)
    ints = False
    scalar = None
    if type(action_space) is gs.Discrete and num_envs is None:
        ints = True
        dtype = np.dtype(action_space.dtype)
        scalar = scalar_field(encoder, dtype)
        action = array_field(encoder, dtype, ())
    elif fixed_box(action_space) or (type(action_space) is gs.MultiDiscrete
                                      and num_envs is not None):
        action = array_field(encoder, np.dtype(action_space.dtype),
                             tuple(action_space.shape or ()))
    else:
        return None
    if obs is None or action is None:
        return None
    flags = None
    rewards: tuple[Field, ...] = ()
    if num_envs is None:
        rewards = tuple(scalar_field(encoder, np.dtype(t)) for t in _REWARD_SCALARS)
    else:
        fields = (array_field(encoder, np.dtype(np.float64), (num_envs,)),
                  array_field(encoder, np.dtype(np.bool_), (num_envs,)))
        if fields[0] is None or fields[1] is None:
            return None
        flags = (fields[0], fields[1], fields[1])
    return StepFrames(action, scalar, ints, obs, flags, rewards)


def contract_frames(contract: dict[str, Any]) -> StepFrames | None:
    """The fixed step layouts of an env or vector env contract (``None``: none, or a model).

    A contract that cannot be read yields ``None``: the general path then meets it.
    """
    try:
        kind = contract.get("kind")
        if kind not in ("env", "vector_env"):
            return None
        observation = schema_to_space(contract["observation_space"])
        action = schema_to_space(contract["action_space"])
        num_envs = int(contract["num_envs"]) if kind == "vector_env" else None
    except Exception:
        return None
    return step_frames(observation, action, num_envs)
