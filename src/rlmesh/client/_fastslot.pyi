"""The client's slot step, compiled (see :mod:`rlmesh.client.fastslot`)."""

from typing import Any

import numpy as np

from rlmesh.transport.shmlink import ShmLink
from rlmesh.transport.spin import SpinPolicy

DECLINED: int
WAKE: int
RECEIVE: int
ASLEEP: int

class FastSlot:
    spun_from: int
    held: bool
    wakes: int
    def __init__(self, link: ShmLink, policy: SpinPolicy, ctl: memoryview, out: memoryview,
                 incoming: memoryview, out_word: int, in_word: int, peer_sleep: int,
                 kind: int, ndarray: type, action: np.ndarray[Any, Any],
                 scalar_type: type | None, ints: bool, tail: int,
                 replies: tuple[np.ndarray[Any, Any], ...], /) -> None: ...
    def step(self, rid: int, action: Any, /) -> list[Any] | int: ...
    def release(self) -> None: ...
