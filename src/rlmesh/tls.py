"""TLS for rlmesh connections, with the standard :mod:`ssl` module.

A server given an :class:`ssl.SSLContext` (``EnvServer(..., tls=...)``) wraps every accepted
connection before the handshake; a client given one (``RemoteEnv(..., tls=...)``), or an
address written ``tls://host:port``, wraps its connection the same way. Both helpers below
build contexts with certificate verification on and TLS 1.2 as the floor::

    server = rlmesh.EnvServer(factory, "tls://0.0.0.0:5555", token=secret,
                              tls=rlmesh.tls.server_context("cert.pem", "key.pem"))
    env = RemoteEnv("tls://envs.example.org:5555", token=secret,
                    tls=rlmesh.tls.client_context(cafile="ca.pem"))

With ``client_ca`` the server also demands a certificate from every client, signed by that
CA (mutual TLS). Shared memory is never used on a TLS connection.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

__all__ = ["client_context", "server_context"]

Path = str | os.PathLike[str]


def server_context(certfile: Path, keyfile: Path | None = None, *,
                   client_ca: Path | None = None, password: str | None = None
                   ) -> ssl.SSLContext:
    """A server-side context presenting ``certfile``.

    Args:
        certfile: PEM file with the server's certificate (and chain).
        keyfile: PEM file with its private key (``None``: inside ``certfile``).
        client_ca: PEM file of the CA(s) whose client certificates are accepted. When
            given, clients without such a certificate are refused (mutual TLS).
        password: Passphrase of an encrypted key.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile, password)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(cafile: Path | None = None, *, certfile: Path | None = None,
                   keyfile: Path | None = None, check_hostname: bool = True,
                   password: str | None = None) -> ssl.SSLContext:
    """A client-side context that verifies the server.

    Args:
        cafile: PEM file of the CA(s) to trust (``None``: the system's trust store).
        certfile: The client's own certificate, for servers that require one.
        keyfile: Its private key (``None``: inside ``certfile``).
        check_hostname: Match the server's certificate against the address's host.
        password: Passphrase of an encrypted key.
    """
    context = ssl.create_default_context(cafile=None if cafile is None else os.fspath(cafile))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile, password)
    return context


def resolve_client(tls: Any, scheme_tls: bool) -> ssl.SSLContext | None:
    """The context a client uses: ``tls`` itself, a default one, or none.

    Args:
        tls: An ``SSLContext``, ``True`` (system trust store), or ``None``/``False``.
        scheme_tls: Whether the address was written ``tls://``.

    Raises:
        TypeError: For any other ``tls`` value.
    """
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls is True or (tls is None and scheme_tls):
        return client_context()
    if tls is False and scheme_tls:
        raise ValueError("a tls:// address needs TLS; drop tls=False")
    if tls is None or tls is False:
        return None
    raise TypeError(f"tls must be an ssl.SSLContext, True or None, not {type(tls).__qualname__}")
