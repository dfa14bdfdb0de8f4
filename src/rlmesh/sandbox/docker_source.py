"""What a sandbox source names: an env to build an image for, or an image to run as it is.

* ``CartPole-v1``, ``ALE/Pong-v5``, ``pkg:Env-v0``, ``module:callable`` or ``gym://ID``: an env;
  the Docker backend builds an image holding this rlmesh and the requested packages.
* ``docker://IMG`` or ``image://IMG``: a prebuilt image whose own entrypoint serves.
* A bare image reference with a tag or digest (``my-env:latest``, ``repo/img@sha256:...``): an
  image too, when Docker has it locally. A Gymnasium id always ends in ``-v<N>``, which is
  how ``pkg:Env-v0`` stays an env; a ``module:callable`` that is not a local image stays an env.

Nothing is pulled from a registry behind the caller's back: a bare reference Docker does not
have is served as an env target, and ``docker://`` / ``image://`` of a missing image fails with
the advice to ``docker pull`` it first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["IMAGE_SCHEMES", "SandboxSource", "classify_source", "image_reference"]

IMAGE_SCHEMES = ("docker://", "image://")
"""Prefixes naming a prebuilt image."""
_GYM_ID_END = re.compile(r"-v\d+$")
_IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/-]*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class SandboxSource:
    """A source, classified.

    Args:
        kind: ``"image"`` (run as it is) or ``"env"`` (built into an image).
        value: The image reference, or what ``rlmesh serve`` takes (an env id or
            ``module:callable``).
        resolved: The canonical spelling, ``image://IMG`` or ``gym://ID``.
    """

    kind: str
    value: str
    resolved: str


def image_reference(source: str) -> str | None:
    """The image a ``docker://`` / ``image://`` source names, else ``None``.

    Raises:
        ValueError: The scheme is there but the reference after it is empty or malformed.
    """
    for scheme in IMAGE_SCHEMES:
        if source.startswith(scheme):
            ref = source[len(scheme):].strip()
            if not _IMAGE_REF.match(ref):
                raise ValueError(f"{source!r}: {scheme} needs an image reference such as "
                                 f"{scheme}my-env:latest")
            return ref
    return None


def _image_shaped(value: str) -> bool:
    if _GYM_ID_END.search(value) or not _IMAGE_REF.match(value):
        return False
    return "@sha256:" in value or ":" in value.rsplit("/", 1)[-1]


def classify_source(source: str, image_exists: Callable[[str], bool]) -> SandboxSource:
    """Classify a sandbox source.

    Args:
        source: What the caller passed (an env id, ``gym://ID``, ``docker://IMG``, ...).
        image_exists: Whether Docker has an image locally (asked only for a bare,
            image-shaped source).

    Returns:
        The source's kind, value and canonical spelling.

    Raises:
        ValueError: The source is empty, has an unknown scheme, or a malformed image name.
    """
    value = source.strip()
    if not value:
        raise ValueError("a sandbox source must not be empty")
    ref = image_reference(value)
    if ref is not None:
        return SandboxSource("image", ref, f"image://{ref}")
    if value.startswith("gym://"):
        target = value[len("gym://"):]
        if not target:
            raise ValueError("gym:// needs an env id, as in gym://CartPole-v1")
        return SandboxSource("env", target, value)
    if "://" in value:
        raise ValueError(f"unknown sandbox source scheme in {source!r}: use an env id, "
                         "gym://ID, docker://IMAGE or image://IMAGE")
    if _image_shaped(value) and image_exists(value):
        return SandboxSource("image", value, f"image://{value}")
    return SandboxSource("env", value, f"gym://{value}")
