"""What ``EnvServer`` checks when it is made: what it serves, and how it is exposed."""

from __future__ import annotations

import logging
import ssl
import warnings
from typing import Any

from rlmesh.errors import RLMeshWarning
from rlmesh.server.authored import authored
from rlmesh.server.framework import action_converter
from rlmesh.server.options import ServeOptions
from rlmesh.server.seam import Source
from rlmesh.server.sources import EnvSource
from rlmesh.transport.sockets import Address

__all__ = ["check_exposure", "check_source", "source_of"]

log = logging.getLogger("rlmesh.server")


def check_exposure(requested: Address, token: bytes | None, tls: ssl.SSLContext | None,
                    workers: int) -> None:
    """Refuse inconsistent TLS and worker settings; warn about an unauthenticated exposure."""
    if tls is not None and not isinstance(tls, ssl.SSLContext):
        raise TypeError("tls must be an ssl.SSLContext (see rlmesh.tls.server_context)")
    if requested.tls and tls is None:
        raise ValueError(f"{requested} needs tls=rlmesh.tls.server_context(certfile, keyfile)")
    if tls is not None and workers > 1:
        raise ValueError("workers > 1 with TLS is not supported yet")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if requested.kind == "memory" and tls is not None:
        raise ValueError("a memory:// endpoint lives in this process: TLS does not apply")
    if workers > 1 and requested.kind != "tcp":
        raise ValueError("workers > 1 shares a TCP port (SO_REUSEPORT); use a TCP address")
    mutual = tls is not None and tls.verify_mode == ssl.CERT_REQUIRED
    if not requested.is_loopback and token is None and not mutual:
        message = (f"rlmesh: serving {requested} beyond this machine without a token: anyone "
                   "who can reach it can drive the env. Pass token= (or set RLMESH_TOKEN).")
        log.warning(message)
        warnings.warn(message, RLMeshWarning, stacklevel=3)


def source_of(env: Any, tags: Any, framework: str | None, device: Any) -> Source:
    """What ``EnvServer(env, ...)`` serves: ``env`` if it is a source, else an env source.

    An authored factory (``rlmesh.EnvFactory``, class or instance) is served with its own
    tags and framework unless ``tags``/``framework`` are given, and closed with the server.
    """
    factory = authored(env)
    if factory is not None:
        return EnvSource(factory.build, tags=factory.tags if tags is None else tags,
                         convert_action=action_converter(framework or factory.framework,
                                                         device),
                         on_close=factory.close)
    if not isinstance(env, Source):
        return EnvSource(env, tags=tags, convert_action=action_converter(framework, device))
    if tags is not None or framework is not None or device is not None:
        raise TypeError(f"tags, framework and device describe a served env, not a "
                        f"{type(env).__qualname__}")
    return env


def check_source(source: Source, options: ServeOptions, workers: int) -> None:
    """Refuse options a shared resource cannot honour."""
    if options.restart_on_error and source.shared:
        raise TypeError("restart_on_error needs a factory (a callable or a registered env "
                        "id): a served env instance cannot be rebuilt")
    if workers > 1 and (source.shared or not isinstance(source, EnvSource)):
        raise TypeError("workers > 1 needs a factory (a callable or a registered env id): "
                        "one env instance cannot be shared across processes")
