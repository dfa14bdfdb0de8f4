"""What a sandbox source names: an env to build a stack for, or an image to run as it is.

* ``CartPole-v1``, ``gym://CartPole-v1``, ``ale_py:ALE/Pong-v5``: a registered env id (with
  an optional module to import first), served by ``rlmesh serve`` in a built stack.
* ``my_envs:make_env``: a ``module:callable`` returning an env (the module must be
  importable in the sandbox: from its packages, or the current directory for the uv
  backend).
* ``docker://img``, ``image://img``, or a bare image reference with a tag or digest
  (``org/img:1.0``, ``img@sha256:...``): a container image, run by the Docker backend.

A bare ``name:word`` is read as ``module:callable`` when both sides are Python names and as
an image otherwise; an env id's ``-vN`` suffix always means an env. Write ``image://`` or
``gym://`` to decide a doubtful case. The resolution is logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from rlmesh.errors import SandboxError

__all__ = ["Source", "resolve_source"]

log = logging.getLogger("rlmesh")

_ENV_ID_VERSION = re.compile(r"-v\d+$")
_MODULE_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class Source:
    """A resolved sandbox source.

    Args:
        kind: ``"env"`` (served from a built stack) or ``"image"`` (a container image).
        requested: The source as given.
        resolved: Its explicit form (``"gym://CartPole-v1"``, ``"image://org/img:1.0"``).
        target: What ``rlmesh serve`` takes, or the image reference.
    """

    kind: str
    requested: str
    resolved: str
    target: str


def _image(requested: str, reference: str) -> Source:
    if not reference:
        raise ValueError(f"sandbox source {requested!r} names no image")
    return Source("image", requested, f"image://{reference}", reference)


def _bare(requested: str, value: str) -> Source:
    last = value.rsplit("/", 1)[-1]
    if "@sha256:" in value:
        return _image(requested, value)
    if ":" in last and not _ENV_ID_VERSION.search(value) and not _MODULE_CALLABLE.match(value):
        return _image(requested, value)
    return Source("env", requested, f"gym://{value}", value)


def resolve_source(source: str) -> Source:
    """Resolve a sandbox source (see the module's description).

    Raises:
        ValueError: The source is empty or has a scheme rlmesh does not know.
        SandboxError: An ``hf://`` source (not supported yet).
    """
    if not isinstance(source, str):
        raise TypeError(f"a sandbox source is a string, not {type(source).__name__}")
    value = source.strip()
    if not value:
        raise ValueError("a sandbox source must not be empty")
    if value.startswith("gym://"):
        target = value[len("gym://"):]
        if not target:
            raise ValueError(f"sandbox source {source!r} names no env")
        resolved = Source("env", source, value, target)
    elif value.startswith(("docker://", "image://")):
        resolved = _image(source, value.split("://", 1)[1].strip())
    elif value.startswith("hf://"):
        raise SandboxError("hf:// sandbox sources are not supported yet; serve the env's "
                           "factory as module:callable with SandboxBuild(packages=[...])")
    elif "://" in value:
        raise ValueError(f"unknown sandbox source scheme in {source!r} (use gym://, "
                         "docker:// or image://)")
    else:
        resolved = _bare(source, value)
    log.info("sandbox source %r resolved to %s", source, resolved.resolved)
    return resolved
