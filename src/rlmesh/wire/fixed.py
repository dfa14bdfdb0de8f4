"""Fixed-shape step frames: a STEP request and its reply, without the general codec.

When a contract fixes its shapes (a Box or Discrete action; a Box observation small enough
to travel inline; for a vector env, the batches of both), every STEP request and its usual
reply share one layout each, apart from the request id and the bytes of the values:

* request ``[2, rid, action]``: the action as a NumPy scalar of the space's dtype, a Python
  int (Discrete), or an array of the space's dtype and shape;
* reply ``[0, rid, obs, reward, terminated, truncated, {}]``: the observation array, then a
  reward and two Python bools (one env), or three arrays (a vector env). One env's reward is a
  Python float, or a NumPy ``float64`` or ``float32`` scalar (Pendulum's and MuJoCo's envs
  return those), which arrives as the same NumPy scalar.

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
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_REWARD_SCALARS: Final = (np.float64, np.float32)
"""The NumPy scalar types one env's reward may have in a fixed reply (besides a float)."""
_packb = msgpack.packb
_unpackb = msgpack.unpackb


def _rid_bytes(rid: Any) -> bytes | None:
    """The shortest msgpack encoding of a request id from 0 to 2**32 - 1; else ``None``."""
    if type(rid) is not int or rid < 0:
        return None
    if rid < 0x80:
        return bytes((rid,))
    if rid < 0x100:
        return bytes((0xCC, rid))
    if rid < 0x10000:
        return b"\xcd" + _U16.pack(rid)
    if rid < 0x100000000:
        return b"\xce" + _U32.pack(rid)
    return None


_RID_SIZES: Final = {0xCC: 2, 0xCD: 3, 0xCE: 5}
_RID_FORMATS: Final = {1: "B", 2: "xB", 3: "xH", 5: "xI"}
"""struct formats of a request id by the width of its encoding (the marker byte skipped)."""


def _read_rid(header: bytes, pos: int) -> tuple[int, int]:
    """The request id at ``pos`` and the position after it; ``(-1, 0)`` for another form.

    The header holds at least one byte after the id's, or the id is not read.
    """
    first = header[pos]
    if first < 0x80:
        return first, pos + 1
    size = _RID_SIZES.get(first, 0)
    if not size or len(header) <= pos + size:
        return -1, 0
    return int.from_bytes(header[pos + 1 : pos + size], "big"), pos + size


class _Array:
    """One array field of fixed dtype and shape: the ext prefix the general encoder writes."""

    __slots__ = ("dtype", "layout", "nbytes", "prefix", "reshape", "shape")

    def __init__(self, dtype: np.dtype[Any], shape: tuple[int, ...], prefix: bytes) -> None:
        self.dtype = dtype
        self.shape = shape
        self.layout = (shape, dtype)
        """What a value's ``(shape, dtype)`` must equal (tuples compare identity first)."""
        self.prefix = prefix
        self.nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self.reshape = len(shape) != 1

    def encode(self, value: Any) -> bytes | None:
        if type(value) is not np.ndarray or (value.shape, value.dtype) != self.layout:
            return None
        return self.prefix + value.tobytes()

    def decode_bytes(self, data: bytes) -> np.ndarray[Any, Any]:
        """The array of these bytes, as the decoder returns an inline array (writable)."""
        array = np.frombuffer(bytearray(data), self.dtype)
        return array.reshape(self.shape) if self.reshape else array

    def decode_scalar(self, data: bytes) -> Any:
        """The NumPy scalar of these bytes, as the decoder returns one."""
        return np.frombuffer(data, self.dtype, 1)[0]


def _array_field(encoder: Encoder, dtype: np.dtype[Any], shape: tuple[int, ...]
                 ) -> _Array | None:
    """The field of arrays of ``dtype`` and ``shape``, if they travel inline; else ``None``."""
    sample = np.zeros(shape, dtype)
    header, _, body_len = encoder.encode(sample)
    if body_len or not header.endswith(sample.tobytes()):
        return None  # out of band (too large), or not an array of its own bytes
    return _Array(sample.dtype, sample.shape, header[: len(header) - sample.nbytes])


def _scalar_field(encoder: Encoder, dtype: np.dtype[Any]) -> _Array:
    """The field of NumPy scalars of ``dtype`` (their ext prefix, as the encoder writes it)."""
    header, _, _ = encoder.encode(dtype.type(0))
    return _Array(dtype, (), header[: len(header) - dtype.itemsize])


def _fixed_box(space: gs.Space[Any]) -> bool:
    return type(space) is gs.Box and space.dtype is not None and space.dtype.kind in "biuf"


class StepFrames:
    """The fixed layouts of one contract's STEP requests and replies (see the module).

    Build one with :func:`step_frames`. Not thread-safe (as the codec it stands in for).
    """

    def __init__(self, action: _Array, scalar: _Array | None, ints: bool, obs: _Array,
                 flags: tuple[_Array, _Array, _Array] | None,
                 rewards: tuple[_Array, ...] = ()) -> None:
        self.action = action
        """The action field (a vector env's batch of actions)."""
        self.scalar = scalar
        """A Discrete action's NumPy scalar form (``None``: no scalar actions)."""
        self.scalar_type = scalar.dtype.type if scalar is not None else None
        """A Discrete space's NumPy scalar type (``None``: no scalar actions)."""
        self.ints = ints
        """Whether a Python int is an action (a Discrete space)."""
        self.obs = obs
        """The observation field (a vector env's batch)."""
        self.batched = flags
        """The reward, terminated and truncated arrays of a vector env (``None``: one env)."""
        self.rewards = rewards if flags is None else ()
        """One env's NumPy scalar rewards (besides a Python float): a field per dtype."""
        self._reward_forms = {form.dtype.type: form for form in self.rewards}
        # The whole reply, by the width of its request id and its size: the array fields as
        # (prefix, bytes) pairs, then a reward and two bools (one env), and the empty info
        # map; with the NumPy scalar form of the reward that makes it (None: a float).
        fields = "".join(f"{len(f.prefix)}s{f.nbytes}s" for f in (obs, *(flags or ())))
        tails: list[tuple[str, _Array | None]] = [("BdBBB" if flags is None else "B", None)]
        tails += [(f"{len(f.prefix)}s{f.nbytes}sBBB", f) for f in self.rewards]
        self._replies: dict[tuple[int, int], tuple[struct.Struct, _Array | None]] = {}
        for width, code in _RID_FORMATS.items():
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
        for width, code in _RID_FORMATS.items():
            for field, read in forms:
                layout = struct.Struct(f">2s{code}{len(field.prefix)}s{field.nbytes}s")
                self._requests.setdefault((width, layout.size), []).append(
                    (layout, field.prefix, read))

    # -- requests (the client encodes, the server decodes) --------------------------------

    def encode_request(self, rid: Any, action: Any) -> bytes | None:
        """The header of ``[STEP, rid, action]``, or ``None`` if not of a fixed layout."""
        rid_bytes = _rid_bytes(rid)
        if rid_bytes is None:
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
        return _REQUEST + rid_bytes + body

    def decode_request(self, header: bytes | memoryview) -> list[Any] | None:
        """``[STEP, rid, action]`` from a request header of a fixed layout, else ``None``."""
        if len(header) < 4:
            return None
        if type(header) is not bytes:
            header = bytes(header)
        first = header[2]
        width = 1 if first < 0x80 else _RID_SIZES.get(first, 0)
        for layout, prefix, read in self._requests.get((width, len(header)), ()):
            head, rid, got, data = layout.unpack(header)
            if head == _REQUEST and got == prefix:
                return [_OP_STEP, rid, read(data)]
        if self.ints and width and 0 < len(header) - 2 - width <= 9 \
                and header[:2] == _REQUEST:
            pos = 2 + width
            rid = _read_rid(header, 2)[0]
            first = header[pos]
            if first < 0x80 or first >= 0xE0 or 0xCC <= first <= 0xD3:
                try:
                    value = _unpackb(header[pos:])
                except Exception:  # (truncated, or more than one value: the general path's)
                    return None
                return [_OP_STEP, rid, value]
        return None

    # -- replies (the server encodes, the client decodes) ---------------------------------

    def encode_reply(self, reply: list[Any]) -> bytes | None:
        """The header of ``[OK, rid, obs, reward, terminated, truncated, {}]``, or ``None``."""
        if len(reply) != 7 or reply[0] != 0 or type(reply[0]) is not int:
            return None
        info = reply[6]
        if type(info) is not dict or info:
            return None
        rid_bytes = _rid_bytes(reply[1])
        if rid_bytes is None:
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
            return b"".join((_REPLY, rid_bytes, obs, mark, value, _FLAGS[terminated],
                             _FLAGS[truncated], b"\x80"))
        _, _, obs, rewards, terminated, truncated, _ = reply
        ndarray = np.ndarray
        if type(obs) is not ndarray or type(rewards) is not ndarray \
                or type(terminated) is not ndarray or type(truncated) is not ndarray \
                or (obs.shape, rewards.shape, terminated.shape, truncated.shape, obs.dtype,
                    rewards.dtype, terminated.dtype, truncated.dtype) != self.reply_layout:
            return None
        obs_prefix, reward_prefix, terminated_prefix, truncated_prefix = self._prefixes
        return b"".join((_REPLY, rid_bytes, obs_prefix, obs.tobytes(), reward_prefix,
                         rewards.tobytes(), terminated_prefix, terminated.tobytes(),
                         truncated_prefix, truncated.tobytes(), b"\x80"))

    def decode_reply(self, header: bytes | memoryview, body: Any) -> list[Any] | None:
        """The reply, decoded, if its header has the fixed layout (and no body); else None."""
        if body is not None or len(header) < 3:
            return None
        if type(header) is not bytes:
            header = bytes(header)
        first = header[2]
        found = self._replies.get((1 if first < 0x80 else _RID_SIZES.get(first, 0),
                                   len(header)))
        if found is None:
            return None
        layout, form = found
        fields = layout.unpack(header)
        if fields[0] != _REPLY:
            return None
        return self._one_reply(fields, form) if self.batched is None else \
            self._vector_reply(fields)

    def _vector_reply(self, fields: tuple[Any, ...]) -> list[Any] | None:
        """A vector env's reply from its fields: head, rid, (prefix, bytes) x 4, the info."""
        if fields[2:10:2] != self._prefixes or fields[10] != _EMPTY_MAP:
            return None
        obs, rewards, terminated, truncated = self._arrays
        return [0, fields[1], obs.decode_bytes(fields[3]), rewards.decode_bytes(fields[5]),
                terminated.decode_bytes(fields[7]), truncated.decode_bytes(fields[9]), {}]

    def _one_reply(self, fields: tuple[Any, ...], form: _Array | None) -> list[Any] | None:
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
        return [0, rid, self.obs.decode_bytes(data), reward, done == 0xC3, cut == 0xC3, {}]


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
    if not _fixed_box(observation_space):
        return None
    obs = _array_field(encoder, np.dtype(observation_space.dtype),
                       tuple(observation_space.shape or ()))
    ints = False
    scalar = None
    if type(action_space) is gs.Discrete and num_envs is None:
        ints = True
        dtype = np.dtype(action_space.dtype)
        scalar = _scalar_field(encoder, dtype)
        action = _array_field(encoder, dtype, ())
    elif _fixed_box(action_space) or (type(action_space) is gs.MultiDiscrete
                                      and num_envs is not None):
        action = _array_field(encoder, np.dtype(action_space.dtype),
                              tuple(action_space.shape or ()))
    else:
        return None
    if obs is None or action is None:
        return None
    flags = None
    rewards: tuple[_Array, ...] = ()
    if num_envs is None:
        rewards = tuple(_scalar_field(encoder, np.dtype(t)) for t in _REWARD_SCALARS)
    else:
        fields = (_array_field(encoder, np.dtype(np.float64), (num_envs,)),
                  _array_field(encoder, np.dtype(np.bool_), (num_envs,)))
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
