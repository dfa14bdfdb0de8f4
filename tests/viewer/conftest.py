"""Fixtures of the viewer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.viewer.panes import Tmux, private_tmux


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    """``tmux(*args)`` on a private tmux server (its own socket), killed afterwards."""
    yield from private_tmux(tmp_path)
