"""TLS: ``tls://`` addresses, server certificates, client certificates, and what fails.

Certificates come from a throwaway CA made by ``trustme`` for each test session; servers run
in this process (threads) and, for the command line, as child processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import trustme

import rlmesh
from rlmesh import ServeOptions
from rlmesh.envs import ImageEnv
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
from rlmesh.tls import client_context, server_context


class Certs:
    """PEM files of a throwaway CA, a server certificate and a client certificate."""

    def __init__(self, root: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.server_file = root / "server.pem"  # key and chain in one file
        server.private_key_and_cert_chain_pem.write_to_path(str(self.server_file))
        client = self.ca.issue_cert("client.example")
        self.client_file = root / "client.pem"
        client.private_key_and_cert_chain_pem.write_to_path(str(self.client_file))
        other = trustme.CA()
        self.other_ca_file = root / "other-ca.pem"
        other.cert_pem.write_to_path(str(self.other_ca_file))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_server(serve: Callable[..., Any], certs: Certs) -> Iterator[Callable[..., Any]]:
    def start(env: Any = None, **kwargs: Any) -> Any:
        context = server_context(certs.server_file, client_ca=kwargs.pop("client_ca", None))
        return serve(env or (lambda: gym.make("CartPole-v1")), "tls://127.0.0.1:0",
                     tls=context, **kwargs)
    yield start


def test_cartpole_over_tls_matches_local(tls_server: Callable[..., Any], certs: Certs) -> None:
    server = tls_server()
    assert server.address.startswith("tls://127.0.0.1:")
    local = gym.make("CartPole-v1")
    with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=10) as env:
        assert env.contract["shm"] is False  # never shared memory under TLS
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            np.testing.assert_array_equal(obs, local.reset(seed=seed)[0])
            for t in range(200):
                got, want = env.step(t % 2), local.step(t % 2)
                np.testing.assert_array_equal(got[0], want[0])
                assert got[1:4] == want[1:4]
                if got[2] or got[3]:
                    break


def test_large_observations_and_vector_envs_over_tls(serve: Callable[..., Any],
                                                     certs: Certs) -> None:
    context = server_context(certs.server_file)
    images = serve(lambda: ImageEnv(224, 224, 3), "tls://127.0.0.1:0", tls=context)
    vector = serve(lambda: gym.make_vec("CartPole-v1", 3, vectorization_mode="sync"),
                   "tls://127.0.0.1:0", tls=context)
    client = client_context(certs.ca_file)
    with RemoteEnv(images.address, tls=client, timeout=10) as env:
        env.reset(seed=0)
        for action in (1, 3, 2):
            obs = env.step(np.int64(action))[0]
            assert obs.shape == (224, 224, 3) and (obs == action).all()
    with RemoteVectorEnv(vector.address, tls=client, timeout=10) as venv:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (3, 4)
        venv.step(np.array([0, 1, 0]))


def test_untrusted_server_certificate_is_refused(tls_server: Callable[..., Any],
                                                 certs: Certs) -> None:
    server = tls_server()
    with pytest.raises(rlmesh.ConnectFailedError, match="TLS"):
        RemoteEnv(server.address, tls=client_context(certs.other_ca_file), connect_timeout=5)
    # The system trust store does not know the test CA either (tls:// implies it).
    with pytest.raises(rlmesh.ConnectFailedError):
        RemoteEnv(server.address, connect_timeout=5)
    # The server carries on.
    with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=10) as env:
        env.reset(seed=0)


def test_plain_client_against_tls_server_fails_fast(tls_server: Callable[..., Any],
                                                    certs: Certs) -> None:
    server = tls_server()
    plain = server.address.replace("tls://", "")
    start = time.monotonic()
    with pytest.raises(rlmesh.RLMeshError):
        RemoteEnv(plain, connect_timeout=5)
    assert time.monotonic() - start < 5
    with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=10) as env:
        env.reset(seed=0)


def test_tls_client_against_plain_server_fails_fast(serve: Callable[..., Any],
                                                    certs: Certs) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    start = time.monotonic()
    with pytest.raises(rlmesh.ConnectFailedError):
        RemoteEnv(f"tls://{server.address}", tls=client_context(certs.ca_file),
                  connect_timeout=3)
    assert time.monotonic() - start < 5


def test_mutual_tls_requires_a_client_certificate(tls_server: Callable[..., Any],
                                                  certs: Certs) -> None:
    server = tls_server(client_ca=certs.ca_file)
    without = client_context(certs.ca_file)
    with pytest.raises((rlmesh.ConnectFailedError, rlmesh.ConnectionLostError)):
        env = RemoteEnv(server.address, tls=without, connect_timeout=5)
        env.reset()  # TLS 1.3 may report the refusal only on first use
    with_cert = client_context(certs.ca_file, certfile=certs.client_file)
    with RemoteEnv(server.address, tls=with_cert, timeout=10) as env:
        env.reset(seed=0)
        env.step(0)


def test_token_and_tls_together(tls_server: Callable[..., Any], certs: Certs) -> None:
    server = tls_server(token="s3cret")
    client = client_context(certs.ca_file)
    with pytest.raises(rlmesh.AuthenticationError):
        RemoteEnv(server.address, tls=client, connect_timeout=5)
    with RemoteEnv(server.address, tls=client, token="s3cret", timeout=10) as env:
        env.reset(seed=0)


def test_timeouts_hold_over_tls(tls_server: Callable[..., Any], certs: Certs) -> None:
    class Slow(gym.Env[int, int]):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
            return 0, {}

        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            time.sleep(1.0)
            return 0, 0.0, False, False, {}

    server = tls_server(Slow, options=ServeOptions(close_timeout=2))
    with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=0.3) as env:
        env.reset()
        start = time.monotonic()
        with pytest.raises(rlmesh.RLMeshTimeoutError):
            env.step(0)
        assert time.monotonic() - start < 0.9


def test_a_stalled_tls_handshake_does_not_block_the_server(tls_server: Callable[..., Any],
                                                           certs: Certs) -> None:
    server = tls_server()
    host, port = server.address.replace("tls://", "").rsplit(":", 1)
    silent = socket.create_connection((host, int(port)))  # connects, never says hello
    try:
        with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=10) as env:
            env.reset(seed=0)
    finally:
        silent.close()


def test_tls_address_needs_a_context(serve: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="tls"):
        rlmesh.EnvServer(lambda: gym.make("CartPole-v1"), "tls://127.0.0.1:0")
    with pytest.raises(ValueError, match="tls"):
        RemoteEnv("tls://127.0.0.1:1", tls=False)


def test_cli_serve_and_ping_over_tls(spawn: Callable[..., Any], certs: Certs) -> None:
    server = spawn("CartPole-v1", address="tls://127.0.0.1:0",
                   extra_args=["--tls-cert", str(certs.server_file)])
    assert server.address.startswith("tls://")
    ping = [sys.executable, "-m", "rlmesh", "ping", server.address, "--timeout", "5"]
    ok = subprocess.run([*ping, "--tls-ca", str(certs.ca_file)], capture_output=True,
                        timeout=30, env=os.environ)
    assert ok.returncode == 0, ok.stderr.decode()
    assert b"serving CartPole-v1" in ok.stdout
    untrusted = subprocess.run(ping, capture_output=True, timeout=30)
    assert untrusted.returncode == 1
    with RemoteEnv(server.address, tls=client_context(certs.ca_file), timeout=10) as env:
        env.reset(seed=0)
