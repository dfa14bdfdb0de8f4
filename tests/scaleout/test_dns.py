"""rlmesh.scaleout.dns: a StatefulSet's pods named, waited for and followed through DNS.

The lookups go through a resolver the tests answer (a table that changes as "pods" become
ready), so nothing leaves the machine; one test uses the system's resolver on ``localhost``.
The CLI's flag checks run through ``eval_addresses``.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import pytest

from rlmesh.cli.commands import eval_addresses
from rlmesh.errors import ConnectFailedError
from rlmesh.scaleout.dns import (
    DnsEndpoints,
    StatefulSetDNS,
    find_statefulset,
    resolves,
    system_resolver,
    wait_resolvable,
)
from rlmesh.vector.endpoints import EndpointSet

pytestmark = pytest.mark.timeout(30)


class Cluster:
    """A pretend cluster DNS: names published now, and how often each was asked."""

    def __init__(self, *published: str) -> None:
        self.published = set(published)
        self.asked: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self.lock:
            self.asked[host] = self.asked.get(host, 0) + 1
            if host in self.published:
                return [f"10.0.0.{sorted(self.published).index(host) + 1}"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_names_follow_the_statefulset_pattern() -> None:
    dns = StatefulSetDNS.parse("envs.envs-svc.rl.svc:5555", 3)
    assert dns.hosts() == ["envs-0.envs-svc.rl.svc", "envs-1.envs-svc.rl.svc",
                           "envs-2.envs-svc.rl.svc"]
    assert dns.addresses()[2] == "envs-2.envs-svc.rl.svc:5555"
    # One name is both the StatefulSet and its Service (names relative to the namespace).
    assert StatefulSetDNS.parse("envs:7000", 2).addresses() == ["envs-0.envs:7000",
                                                                "envs-1.envs:7000"]


@pytest.mark.parametrize(("spec", "replicas"), [
    ("envs", 2), ("envs:", 2), (":5555", 2), ("envs:http", 2), ("Envs:5555", 2),
    ("envs.Bad_Svc:5555", 2), ("envs:0", 2), ("envs:70000", 2), ("envs:5555", 0),
    ("envs..rl:5555", 2), ("-envs:5555", 2),
])
def test_bad_specs_are_refused(spec: str, replicas: int) -> None:
    with pytest.raises(ValueError):
        StatefulSetDNS.parse(spec, replicas)


def test_wait_resolvable_waits_for_pods_to_be_published() -> None:
    names = StatefulSetDNS.parse("envs.envs:5555", 3).addresses()
    cluster = Cluster("envs-0.envs")

    def become_ready() -> None:
        time.sleep(0.2)
        cluster.published |= {"envs-1.envs", "envs-2.envs"}

    threading.Thread(target=become_ready, daemon=True).start()
    found, missing = wait_resolvable(names, 10.0, resolver=cluster, interval=0.02)
    assert (found, missing) == (names, [])
    assert cluster.asked["envs-1.envs"] > 1  # asked again until it appeared
    assert cluster.asked["envs-0.envs"] == 1  # a found name is not asked again


def test_names_never_published_are_reported_after_the_timeout() -> None:
    cluster = Cluster("envs-1.envs")
    found, missing = find_statefulset("envs:5555", 3, 0.1, resolver=cluster)
    assert found == ["envs-1.envs:5555"]
    assert missing == ["envs-0.envs:5555", "envs-2.envs:5555"]


def test_nothing_published_is_a_connect_failure() -> None:
    with pytest.raises(ConnectFailedError, match="none of 2 endpoint names resolved"):
        find_statefulset("envs:5555", 2, 0.05, resolver=Cluster())


def test_the_system_resolver_answers_for_localhost() -> None:
    assert resolves("localhost", 5555, system_resolver)
    assert any(ip in ("127.0.0.1", "::1") for ip in system_resolver("localhost", 5555))


def test_dns_endpoints_are_a_live_endpoint_set() -> None:
    names = StatefulSetDNS.parse("envs:5555", 2).addresses()
    cluster = Cluster("envs-0.envs")
    live = DnsEndpoints(names, resolver=cluster, interval=0.02)
    assert isinstance(live, EndpointSet)
    assert live.addresses == ["envs-0.envs:5555", None]
    start = live.version
    assert live.wait_changed(start, 0.1) == start  # nothing changed: back after the timeout

    def pod_moves() -> None:  # pod 1 becomes ready, pod 0 is lost (a node went away)
        time.sleep(0.1)
        cluster.published = {"envs-1.envs"}

    threading.Thread(target=pod_moves, daemon=True).start()
    moved = live.wait_changed(start, 10.0)
    assert moved > start
    assert live.addresses == [None, "envs-1.envs:5555"]


def args(*addresses: str, statefulset: str | None = None,
         replicas: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(addresses=list(addresses), statefulset=statefulset,
                              replicas=replicas, connect_timeout=0.1)


def test_eval_takes_addresses_or_a_statefulset() -> None:
    assert eval_addresses(args("127.0.0.1:5555")) == ["127.0.0.1:5555"]
    cluster = Cluster("envs-0.envs.rl.svc", "envs-1.envs.rl.svc")
    assert eval_addresses(args(statefulset="envs.envs.rl.svc:5555", replicas=2),
                          resolver=cluster) == ["envs-0.envs.rl.svc:5555",
                                                "envs-1.envs.rl.svc:5555"]
    for wrong, message in [(args(), "give endpoint ADDRESS"),
                           (args("a:1", statefulset="envs:1", replicas=1), "not both"),
                           (args(statefulset="envs:1"), "needs --replicas"),
                           (args("a:1", replicas=2), "goes with --statefulset")]:
        with pytest.raises(ValueError, match=message):
            eval_addresses(wrong, resolver=cluster)
