"""rlmesh.View and the view= values: what names a viewer, what is refused before a run."""

from __future__ import annotations

import inspect

import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.viewer.view import View, as_view
from tests.support.runs import cartpole


def test_view_is_public_with_the_reference_signature() -> None:
    assert rlmesh.View is View
    assert "View" in rlmesh.__all__
    params = inspect.signature(rlmesh.View).parameters
    assert list(params) == ["backend", "port", "fps", "source", "format", "quality"]
    assert all(p.default is not inspect.Parameter.empty for p in params.values())
    assert View().backend == "terminal" and View().format == "png"


@pytest.mark.parametrize("value, backend, port", [
    ("terminal", "terminal", None), ("http", "http", None), ("http:9000", "http", 9000),
    ("both", "both", None), (True, "terminal", None), (" HTTP:0 ", "http", 0)])
def test_view_values(value: object, backend: str, port: int | None) -> None:
    view = as_view(value)
    assert view is not None and view.backend == backend and view.port == port


def test_no_viewer_and_a_view_as_it_is() -> None:
    assert as_view(None) is None and as_view(False) is None
    mine = View(backend="both", fps=30, source="render", format="jpeg", quality=50)
    assert as_view(mine) is mine
    assert mine.terminal and mine.http
    assert not View(backend="http").terminal


@pytest.mark.parametrize("fields, error, match", [
    ({"backend": "window"}, ValueError, "backend"),
    ({"backend": 3}, TypeError, "backend"),
    ({"format": "gif"}, ValueError, "format"),
    ({"fps": 0}, ValueError, "fps"),
    ({"fps": float("inf")}, ValueError, "fps"),
    ({"fps": "10"}, TypeError, "fps"),
    ({"fps": True}, TypeError, "fps"),
    ({"port": 70000}, ValueError, "port"),
    ({"port": -1}, ValueError, "port"),
    ({"port": 80.5}, TypeError, "port"),
    ({"quality": 0}, ValueError, "quality"),
    ({"quality": 101}, ValueError, "quality"),
    ({"source": 3}, TypeError, "source"),
])
def test_view_validation(fields: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        View(**fields)  # type: ignore[arg-type]


class Zero(rlmesh.numpy.Model):
    """A model that always pushes left."""

    def predict(self, observation: object) -> int:
        raise AssertionError("no episode may start with a bad view=")


@pytest.mark.parametrize("value, error", [
    ("window", ValueError), ("http:", ValueError), ("http:abc", ValueError),
    ("http:99999", ValueError), ("terminal:80", ValueError), (1, TypeError),
    (["http"], TypeError), ({"backend": "http"}, TypeError)])
def test_bad_view_values_raise_before_the_run(value: object, error: type[Exception]) -> None:
    env = cartpole()
    played: list[object] = []

    def policy(observation: object) -> int:
        played.append(observation)
        return 0

    with pytest.raises(error, match=r"(?i)view"):
        rlmesh.run(policy, env, seeds=[0], view=value)
    with pytest.raises(error, match=r"(?i)view"):
        rlmesh.session(policy, env, view=value)
    with pytest.raises(error, match=r"(?i)view"):
        Zero().run(env, seeds=[0], view=value)
    with pytest.raises(error, match=r"(?i)view"):
        Zero().session(env, view=value)
    assert played == []
