"""Fixed-shape steps in place: STEP requests and replies written straight into link slots.

Over the same-host link (:mod:`rlmesh.transport.shmlink`), a session whose contract has fixed
step layouts (:mod:`rlmesh.wire.fixed`) may agree on *slot steps* in its handshake
(``docs/protocol.md`` section 10.3). A slot step is not a frame: the client writes the action
at a fixed place in its request slot, the server writes the results at fixed places in its
reply slot, in the machine's own byte order (the link is only offered on x86-64), with no
codec between them. :class:`SlotSteps` is that layout for one contract, over one link's two
slots::

    request slot: kind (u32), form (u32), request id (u64), the action
    reply slot:   kind (u32), form (u32), request id (u64), the observation, then
                  reward (f64), terminated (u8), truncated (u8)          (one env)
                  rewards (f64 x n), terminated (u8 x n), truncated (u8 x n) (a vector env)

The action's *form* keeps what the general codec keeps: an array of the space's dtype and
shape (0), a NumPy scalar of a Discrete space's dtype (1), or a Python int (2). A one-env
reply's form does the same for its reward: a Python float (0), or, where both sides agreed
(``shm-link-step-rewards``), a NumPy ``float64`` (1) or ``float32`` (2) scalar, whose own
bytes the reward's eight hold (a ``float32``'s four, then four zero bytes). A vector env's
reply has form 0. A value of another type, or a reply with a non-empty ``info``, is declined
(``False``): the caller sends a general frame instead, so every value arrives exactly as the
general decoder would return it.

Not thread-safe: a link has one request in flight, and its owner holds the lock.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np

from rlmesh.errors import ProtocolError
from rlmesh.wire.fixed import StepFrames

__all__ = ["SlotSteps", "slot_bytes", "slots_fit"]

_HEAD: Final = struct.Struct("<IIQ")
"""Kind, form, request id: the slot header's 16 bytes."""
_INT_REQUEST: Final = struct.Struct("<IIQq")
_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = 1 << 63
_TAIL: Final = struct.Struct("<d??")
"""Reward, terminated, truncated of one env's reply."""
_OP_STEP: Final = 2
_FORM_ARRAY, _FORM_SCALAR, _FORM_INT = 0, 1, 2
REWARD_TYPES: Final = (np.float64, np.float32)
"""One env's NumPy scalar rewards a slot-step reply carries where agreed: forms 1 and 2."""


def _little(dtype: np.dtype[Any]) -> bool:
    return dtype.byteorder in "=|<" or dtype.itemsize == 1


def slot_bytes(frames: StepFrames) -> tuple[int, int] | None:
    """The bytes a request and a reply of these layouts take in their slots.

    Returns:
        ``(request, reply)``, or ``None`` if a dtype is not in the machine's byte order
        (such a contract keeps the general frames).
    """
    action, obs, batched = frames.action, frames.obs, frames.batched
    if not (_little(action.dtype) and _little(obs.dtype)):
        return None
    request = _HEAD.size + max(action.nbytes, 8)
    reply = _HEAD.size + obs.nbytes + (
        _TAIL.size if batched is None else sum(field.nbytes for field in batched))
    return request, reply


def slots_fit(frames: StepFrames, room: tuple[int, int]) -> bool:
    """Whether these layouts' slot steps fit slots of ``room`` (request, reply) bytes."""
    sizes = slot_bytes(frames)
    return sizes is not None and sizes[0] <= room[0] and sizes[1] <= room[1]


_RELEASED: Final = np.empty(0)
"""What a released view becomes (it holds no part of a slot), or a view this side never
uses that its slot is too small for."""
_APART: Final = 4096
"""From this many observation bytes, a one-env reply's header and tail are written apart
(one struct for the whole reply would first zero the observation's place)."""


class SlotSteps:
    """The slot-step layout of one contract over one link (see the module).

    Args:
        frames: The contract's fixed step layouts (:func:`rlmesh.wire.fixed.step_frames`),
            whose slot steps fit both slots (:func:`slots_fit`).
        outgoing: The slot this side writes (the client's request slot, or the server's
            reply slot), writable.
        incoming: The slot the peer writes.
        kind: The slot kind that marks a slot step (the link's).
        rewards: Whether both sides agreed on NumPy scalar rewards in one env's replies
            (``shm-link-step-rewards``); without, such a reply is declined (a frame).

    Holds NumPy views of the slots until :meth:`release`, which must run before the link
    releases its region.
    """

    def __init__(self, frames: StepFrames, outgoing: memoryview, incoming: memoryview,
                 kind: int, rewards: bool = False) -> None:
        self.kind = kind
        self._ints = frames.ints
        self._scalar_type = frames.scalar_type
        self._one = frames.batched is None
        self.rewards: tuple[type, ...] = REWARD_TYPES if rewards and self._one else ()
        """The NumPy scalar reward types of one env's replies, in form order (from 1)."""
        self._reward_forms = {kind: form for form, kind in enumerate(self.rewards, 1)}
        action, obs = frames.action, frames.obs
        self._action_size = action.dtype.itemsize
        self._tail = _HEAD.size + obs.nbytes
        self._end = self._tail + (
            _TAIL.size if frames.batched is None else sum(f.nbytes for f in frames.batched))
        """Where a reply's values end in the reply slot."""
        self._whole = struct.Struct(f"<IIQ{obs.nbytes}xd??")
        """A one-env reply's header and values around its observation, in one struct."""
        self._apart = obs.nbytes >= _APART
        self._out = outgoing
        self._in = incoming
        # Views of both slots: where this side writes, and where it reads the peer's values.
        self._out_action = self._view(outgoing, _HEAD.size, action.dtype, action.shape)
        self._in_action = self._view(incoming, _HEAD.size, action.dtype, action.shape)
        # (A reply's values go in the reply slot: views of them in the request slot, which
        # this side never uses, are empty where they do not fit it; an image may not.)
        self._out_obs = self._view(outgoing, _HEAD.size, obs.dtype, obs.shape, True)
        self._in_obs = self._view(incoming, _HEAD.size, obs.dtype, obs.shape, True)
        self._in_fields: tuple[np.ndarray[Any, Any], ...] = ()
        """Views of a vector reply's rewards and flags (the peer's; ours are joined bytes)."""
        self._layout = frames.reply_layout
        self._fields: tuple[tuple[int, Any], ...] = ()
        """A vector reply's rewards and flags: where each starts, and its layout."""
        if frames.batched is not None:
            offsets = np.cumsum([self._tail] + [f.nbytes for f in frames.batched])
            self._fields = tuple((int(offset), field) for offset, field
                                 in zip(offsets, frames.batched, strict=False))
            self._in_fields = tuple(
                self._view(incoming, offset, field.dtype, field.shape, True)
                for offset, field in self._fields)
        if self._out_obs is _RELEASED and self._in_obs is _RELEASED:
            raise ValueError("the reply's values fit neither slot")

    @staticmethod
    def _view(slot: memoryview, offset: int, dtype: np.dtype[Any], shape: tuple[int, ...],
              unused: bool = False) -> np.ndarray[Any, Any]:
        """A view of ``slot`` at ``offset``; with ``unused``, empty if it does not fit."""
        count = int(np.prod(shape, dtype=np.int64))
        native = dtype if dtype.isnative else dtype.newbyteorder("=")
        if unused and offset + count * native.itemsize > slot.nbytes:
            return _RELEASED
        return np.frombuffer(slot, native, count, offset).reshape(shape)

    def client_views(self) -> tuple[np.ndarray[Any, Any], type | None, bool, int,
                                    tuple[np.ndarray[Any, Any], ...],
                                    tuple[np.ndarray[Any, Any], ...]]:
        """What the client's compiled step needs (:mod:`rlmesh.transport.fastslots`).

        Returns:
            The request slot's action view, the Discrete action's NumPy scalar type (or
            ``None``), whether Python ints are actions, where a one-env reply's reward
            starts, the reply slot's views (``(obs,)`` for one env, ``(obs, rewards,
            terminated, truncated)`` for a vector env), and a one-item array of each of
            :attr:`rewards`' types.
        """
        return (self._out_action, self._scalar_type, self._ints, self._tail,
                (self._in_obs, *self._in_fields), self._reward_scratch())

    def server_views(self) -> tuple[np.ndarray[Any, Any], bool, bool,
                                    tuple[np.ndarray[Any, Any], ...],
                                    tuple[np.ndarray[Any, Any], ...]]:
        """What the server's compiled step needs (:mod:`rlmesh.transport.fastslots`).

        Returns:
            The request slot's action view, whether a NumPy scalar action may come (a
            Discrete action space), whether a Python int may, views of the reply slot
            where the results go (``(obs,)`` for one env, ``(obs, rewards, terminated,
            truncated)`` for a vector env, one after the other), and a one-item array of
            each of :attr:`rewards`' types.
        """
        fields = tuple(self._view(self._out, offset, field.dtype, field.shape)
                       for offset, field in self._fields)
        return (self._in_action, self._scalar_type is not None, self._ints,
                (self._out_obs, *fields), self._reward_scratch())

    def _reward_scratch(self) -> tuple[np.ndarray[Any, Any], ...]:
        """A one-item array of each NumPy reward type, in form order (the C steps' own)."""
        return tuple(np.zeros(1, kind) for kind in self.rewards)

    def release(self) -> None:
        """Drop the views of the slots (the region may then be closed). Idempotent."""
        self._out_action = self._in_action = self._out_obs = self._in_obs = _RELEASED
        self._in_fields = ()

    # -- the client: requests out, replies in ---------------------------------------------

    def write_request(self, rid: int, action: Any) -> bool:
        """Write ``[STEP, rid, action]`` into the request slot; ``False``: not of the layout.

        Nothing is written when it returns ``False``.
        """
        out, kind = self._out, type(action)
        if kind is np.ndarray:
            view = self._out_action
            dtype = action.dtype
            if action.shape != view.shape or (dtype is not view.dtype and dtype != view.dtype):
                return False
            view[...] = action
            _HEAD.pack_into(out, 0, self.kind, _FORM_ARRAY, rid)
        elif kind is int and self._ints:
            if not _INT_MIN <= action < _INT_MAX:
                return False
            _INT_REQUEST.pack_into(out, 0, self.kind, _FORM_INT, rid, action)
        elif kind is self._scalar_type:
            size = self._action_size
            out[_HEAD.size : _HEAD.size + size] = action.tobytes()
            _HEAD.pack_into(out, 0, self.kind, _FORM_SCALAR, rid)
        else:
            return False
        return True

    def read_reply(self, rid: int) -> list[Any]:
        """The reply ``[OK, rid, obs, reward, terminated, truncated, {}]`` in the reply slot.

        Raises:
            ProtocolError: The slot answers another request.
        """
        if self._one:
            _, form, got, reward, terminated, truncated = self._whole.unpack_from(self._in, 0)
            if got != rid:
                raise ProtocolError(f"a slot step answered request {got}, expected {rid}")
            if form:
                if form > len(self.rewards):
                    raise ProtocolError(f"a slot step reply of unknown form {form}")
                reward = np.frombuffer(self._in, self.rewards[form - 1], 1, self._tail)[0]
            return [0, rid, self._in_obs.copy(), reward, terminated, truncated, {}]
        _, form, got = _HEAD.unpack_from(self._in, 0)
        if got != rid:
            raise ProtocolError(f"a slot step answered request {got}, expected {rid}")
        if form:
            raise ProtocolError(f"a slot step reply of unknown form {form}")
        obs = self._in_obs.copy()
        rewards, terminated, truncated = self._in_fields
        return [0, rid, obs, rewards.copy(), terminated.copy(), truncated.copy(), {}]

    # -- the server: requests in, replies out ---------------------------------------------

    def read_request(self) -> list[Any]:
        """The request ``[STEP, rid, action]`` in the request slot (see :meth:`read_step`)."""
        return [_OP_STEP, *self.read_step()]

    def read_step(self) -> tuple[int, Any]:
        """The request id and the action of the slot step in the request slot.

        Raises:
            ProtocolError: The slot's form is not one this layout has.
        """
        _, form, rid, value = _INT_REQUEST.unpack_from(self._in, 0)
        if form == _FORM_ARRAY:
            return rid, self._in_action.copy()
        if form == _FORM_INT and self._ints:
            return rid, value
        if form == _FORM_SCALAR and self._scalar_type is not None:
            return rid, self._in_action[()]
        raise ProtocolError(f"a slot step of unknown form {form}")

    def write_reply(self, reply: list[Any]) -> bool:
        """Write ``[OK, rid, obs, reward, terminated, truncated, {}]`` into the reply slot.

        Returns:
            ``False`` (nothing written) for a reply of another layout: another length or
            status, a non-empty ``info``, values of other types, dtypes or shapes.
        """
        if len(reply) != 7 or reply[0] != 0 or type(reply[1]) is not int:
            return False
        return self.write_result(*reply[1:])

    def write_result(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
                     info: Any) -> bool:
        """Write the results of step ``rid`` (an OK reply) into the reply slot.

        Returns:
            ``False`` (nothing written) for results of another layout: a non-empty
            ``info``, values of other types, dtypes or shapes.
        """
        ndarray = np.ndarray
        if self._one:
            form = 0 if type(reward) is float else self._reward_forms.get(type(reward))
            if form is None or type(obs) is not ndarray \
                    or type(terminated) is not bool or type(truncated) is not bool \
                    or type(info) is not dict or info \
                    or (obs.shape, obs.dtype) != self._layout:
                return False
            if self._apart:
                _HEAD.pack_into(self._out, 0, self.kind, form, rid)
                _TAIL.pack_into(self._out, self._tail, 0.0 if form else reward, terminated,
                                truncated)
            else:
                self._whole.pack_into(self._out, 0, self.kind, form, rid,
                                      0.0 if form else reward, terminated,
                                      truncated)  # (zeroes the obs: written next)
            if form:  # (a NumPy scalar's own bytes, zero-padded)
                self._out[self._tail : self._tail + reward.itemsize] = reward.tobytes()
            self._out_obs[...] = obs
            return True
        # (Tuples compare item by item, identity first: equal dtypes are mostly the same.)
        if type(obs) is not ndarray or type(reward) is not ndarray \
                or type(terminated) is not ndarray or type(truncated) is not ndarray \
                or type(info) is not dict or info \
                or (obs.shape, reward.shape, terminated.shape, truncated.shape,
                    obs.dtype, reward.dtype, terminated.dtype, truncated.dtype) != self._layout:
            return False
        # One copy into the slot: the four arrays' bytes (C order, the slot's dtypes) joined,
        # read through the buffer protocol (which only C-contiguous arrays offer whole).
        try:
            joined = b"".join((obs, reward, terminated, truncated))  # type: ignore[arg-type]
        except (TypeError, BufferError):
            joined = b"".join((obs.tobytes(), reward.tobytes(), terminated.tobytes(),
                               truncated.tobytes()))
        self._out[_HEAD.size : self._end] = joined
        _HEAD.pack_into(self._out, 0, self.kind, _FORM_ARRAY, rid)
        return True
