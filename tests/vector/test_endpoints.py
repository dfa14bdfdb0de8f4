"""Live endpoint sets: the protocol, the static and the mutable set."""

from __future__ import annotations

import threading
import time

import pytest

from rlmesh.vector.endpoints import (
    EndpointSet,
    MutableEndpoints,
    StaticEndpoints,
    as_endpoint_set,
)


def test_lists_and_addresses_become_static_sets() -> None:
    one = as_endpoint_set("127.0.0.1:1")
    assert isinstance(one, StaticEndpoints) and one.addresses == ["127.0.0.1:1"]
    many = as_endpoint_set(["a:1", "b:2"])
    assert many.addresses == ["a:1", "b:2"] and many.version == 0
    started = time.monotonic()
    assert many.wait_changed(0, 0.05) == 0 and time.monotonic() - started >= 0.04
    assert not isinstance(["a:1"], EndpointSet)


def test_a_mutable_set_wakes_its_waiters_on_a_change() -> None:
    fleet = MutableEndpoints(["a:1", "b:2"])
    assert isinstance(fleet, EndpointSet) and as_endpoint_set(fleet) is fleet
    seen: list[int] = []
    waiter = threading.Thread(target=lambda: seen.append(fleet.wait_changed(0, 5)))
    waiter.start()
    time.sleep(0.05)
    fleet.set(1, None)
    waiter.join(5)
    assert seen == [1] and fleet.addresses == ["a:1", None]
    fleet.set(1, "b:3")
    assert fleet.version == 2 and fleet.addresses == ["a:1", "b:3"]
    assert fleet.wait_changed(2, 0.01) == 2  # nothing new: times out


@pytest.mark.parametrize("timeout", [0.0, 0.02])
def test_a_static_set_never_changes(timeout: float) -> None:
    assert StaticEndpoints(["x:1"]).wait_changed(0, timeout) == 0
