"""The image reference a ``docker://`` / ``image://`` source names, checked.

:mod:`rlmesh.sandbox.sources` classifies every source (an env to build an image for, or an
image to run as it is); the Docker backend reads the image back out of ``image://IMG`` here.
Nothing is pulled from a registry behind the caller's back: an image Docker does not have
fails with the advice to ``docker pull`` or build it first.
"""

from __future__ import annotations

import re

__all__ = ["IMAGE_SCHEMES", "image_reference"]

IMAGE_SCHEMES = ("docker://", "image://")
"""Prefixes naming a prebuilt image."""
_IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/-]*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


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
