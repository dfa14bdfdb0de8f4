"""Token authentication: challenge-response, the token never on the wire, typed refusals."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import rlmesh
from rlmesh.envs import CounterEnv
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv

TOKEN = "s3cret-token-for-tests"


def test_right_token_is_served(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv(), token=TOKEN)
    with RemoteEnv(server.address, token=TOKEN, timeout=5) as env:
        env.reset()
        assert env.step(0)[0] == 1
        assert isinstance(env.contract["auth"], bytes)  # the server's proof


@pytest.mark.parametrize("client_token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_refused_and_the_env_stays_free(
        serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        client_token: str | None) -> None:
    monkeypatch.delenv("RLMESH_TOKEN", raising=False)
    server = serve(CounterEnv(), token=TOKEN)
    with pytest.raises(rlmesh.AuthenticationError) as info:
        RemoteEnv(server.address, token=client_token, connect_timeout=5, timeout=5)
    assert isinstance(info.value, PermissionError)
    with RemoteEnv(server.address, token=TOKEN, timeout=5) as env:  # not left busy
        env.reset()


def test_client_with_a_token_refuses_a_server_without_one(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv())
    with pytest.raises(rlmesh.AuthenticationError, match="cannot prove"):
        RemoteEnv(server.address, token=TOKEN, connect_timeout=5, timeout=5)


def test_token_from_the_environment_on_both_sides(serve: Callable[..., Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMESH_TOKEN", TOKEN)
    server = serve(lambda: CounterEnv())
    with RemoteEnv(server.address, timeout=5) as env:
        env.reset()
    vec = RemoteVectorEnv([server.address, server.address], timeout=5)
    try:
        vec.reset(seed=0)
    finally:
        vec.close()


def test_the_token_never_crosses_the_wire(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv(), token=TOKEN)
    host, port = server.address.rsplit(":", 1)
    seen = bytearray()
    proxy = socket.create_server(("127.0.0.1", 0))
    proxy_port = proxy.getsockname()[1]

    def relay() -> None:
        client, _ = proxy.accept()
        upstream = socket.create_connection((host, int(port)))
        for sock in (client, upstream):
            sock.settimeout(5)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    seen.extend(data)
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    with RemoteEnv(f"127.0.0.1:{proxy_port}", token=TOKEN, timeout=5) as env:
        env.reset()
        env.step(0)
    thread.join(5)
    proxy.close()
    assert len(seen) > 100
    assert TOKEN.encode() not in seen


def test_probe_and_ping_without_the_token(serve: Callable[..., Any]) -> None:
    server = serve(CounterEnv(), token=TOKEN)
    contract = rlmesh.probe(server.address)
    assert contract["auth"] is True and "observation_space" not in contract
    result = subprocess.run([sys.executable, "-m", "rlmesh", "ping", server.address],
                            capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "authentication required" in result.stdout


def test_binding_beyond_loopback_without_a_token_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLMESH_TOKEN", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = rlmesh.EnvServer(CounterEnv(), "0.0.0.0:0")
        server.shutdown()
    assert any(issubclass(w.category, rlmesh.RLMeshWarning) and "token" in str(w.message)
               for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rlmesh.RLMeshWarning)
        rlmesh.EnvServer(CounterEnv(), "0.0.0.0:0", token=TOKEN).shutdown()
        rlmesh.EnvServer(CounterEnv(), "127.0.0.1:0").shutdown()
