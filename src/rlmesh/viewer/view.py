"""``rlmesh.View``: how a run is watched live, and the ``view=`` values that name one.

``view=`` on :func:`rlmesh.run`, :func:`rlmesh.session` and ``Model.run``/``Model.session``
takes ``"terminal"``, ``"http"``, ``"http:PORT"``, ``"both"``, ``True`` (the terminal),
``False``/``None`` (no viewer) or a :class:`View`. :func:`as_view` turns any of them into a
:class:`View` (or ``None``) and refuses anything else before the run starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BACKENDS", "FORMATS", "View", "as_view"]

BACKENDS = ("terminal", "http", "both")
"""Where frames are shown: the terminal, a local web page, or both."""

FORMATS = ("png", "jpeg")
"""How frames reach the web page (JPEG needs Pillow; without it PNG, with a warning)."""


@dataclass(frozen=True)
class View:
    """A live viewer of a run: the env's frames with a step/reward HUD and controls.

    Args:
        backend: ``"terminal"`` (half-block frames drawn in this terminal), ``"http"`` (a page
            on a loopback port) or ``"both"``.
        port: The web page's port (``None``: a free one; the address is printed to stderr).
        fps: Frames per second at most; frames in between are never produced (the run is
            not slowed down to show them).
        source: What to show first: ``None`` (``render()`` if the env renders, else the
            first image in the observation), ``"render"``, an observation key (``"a/b"``
            for nested dicts) or an image role the env tags (``"image/primary"``).
        format: ``"png"`` or ``"jpeg"`` (the web page's frames).
        quality: JPEG quality, 1 to 100.

    Raises:
        ValueError: For an unknown backend or format, a non-positive fps, a port outside
            0-65535 or a quality outside 1-100.
        TypeError: For a value of the wrong type.
    """

    backend: str = "terminal"
    port: int | None = None
    fps: float = 10.0
    source: str | None = None
    format: str = "png"
    quality: int = 80

    def __post_init__(self) -> None:
        _check_choice("backend", self.backend, BACKENDS)
        _check_choice("format", self.format, FORMATS)
        if self.port is not None:
            _check_int("port", self.port, 0, 65535)
        _check_int("quality", self.quality, 1, 100)
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)):
            raise TypeError(f"View fps must be a number, not {type(self.fps).__qualname__}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"View fps must be a positive number, not {self.fps!r}")
        if self.source is not None and not isinstance(self.source, str):
            raise TypeError("View source must be a string (a source name) or None, not "
                            f"{type(self.source).__qualname__}")

    @property
    def terminal(self) -> bool:
        """Whether frames are drawn in the terminal."""
        return self.backend in ("terminal", "both")

    @property
    def http(self) -> bool:
        """Whether frames are served on a web page."""
        return self.backend in ("http", "both")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"View {name} must be a string, not {type(value).__qualname__}")
    if value not in choices:
        raise ValueError(f"View {name} must be one of {', '.join(map(repr, choices))}, "
                         f"not {value!r}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"View {name} must be an int, not {type(value).__qualname__}")
    if not low <= value <= high:
        raise ValueError(f"View {name} must be between {low} and {high}, not {value}")


def _from_string(text: str) -> View:
    if text in BACKENDS:
        return View(backend=text)
    kind, sep, port = text.partition(":")
    if kind == "http" and sep and port.isdigit():
        return View(backend="http", port=int(port))
    raise ValueError(f"view={text!r} is not a viewer: use 'terminal', 'http', 'http:PORT', "
                     "'both', True or rlmesh.View(...)")


def as_view(view: Any) -> View | None:
    """The :class:`View` a ``view=`` value names (``None``: no viewer).

    Raises:
        ValueError: For a string that names no viewer (or a bad port in ``"http:PORT"``).
        TypeError: For a value that is neither a string, a bool, ``None`` nor a View.
    """
    if view is None or view is False:
        return None
    if view is True:
        return View()
    if isinstance(view, View):
        return view
    if isinstance(view, str):
        return _from_string(view.strip().lower())
    raise TypeError("view= takes 'terminal', 'http', 'http:PORT', 'both', True, False, None "
                    f"or rlmesh.View(...), not {type(view).__qualname__}")
