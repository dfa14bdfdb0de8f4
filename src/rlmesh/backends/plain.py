"""The plain backend: ``rlmesh.RemoteEnv`` and ``rlmesh.Model`` with built-in Python values.

``rlmesh.RemoteEnv`` converts every numpy array to (nested) lists and every numpy scalar to
the matching Python ``int``, ``float``, ``bool`` or ``complex``; dicts, tuples and graph
instances keep their container type with converted contents. Actions may be given as plain
values too: they are converted to the action space's dtype before they are sent. Render
frames stay numpy arrays, as Gymnasium's tools (``RecordVideo``, ``check_env``) expect them.
``rlmesh.Model`` sees the same plain values and may return plain actions. Use
:mod:`rlmesh.numpy` to get numpy values unchanged.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

from rlmesh.client.channel import DEFAULT, Default
from rlmesh.client.env import RemoteEnv as NumpyRemoteEnv
from rlmesh.models.model import Model
from rlmesh.sandbox.session import SandboxEnv as NumpySandboxEnv
from rlmesh.values import coerce_action, to_plain

__all__ = ["PlainModel", "RemoteEnv", "SandboxEnv"]


class RemoteEnv(NumpyRemoteEnv):
    """A ``gymnasium.Env`` served by an rlmesh endpoint, with built-in Python values.

    Same arguments and behaviour as :class:`rlmesh.numpy.RemoteEnv`, except that values are
    converted as the :mod:`rlmesh.backends.plain` module describes.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None,
        timeout: float | Default | None = DEFAULT,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the remote env; returns plain ``(observation, info)``."""
        obs, info = super().reset(seed=seed, options=options, timeout=timeout)
        return to_plain(obs), to_plain(info)

    def step(self, action: Any, *, timeout: float | Default | None = DEFAULT
             ) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the remote env; accepts and returns plain values."""
        obs, reward, terminated, truncated, info = super().step(
            coerce_action(self.action_space, action), timeout=timeout)
        return (to_plain(obs), to_plain(reward), bool(terminated), bool(truncated),
                to_plain(info))

    def _attribute_value(self, value: Any) -> Any:
        """Remote attributes and method results arrive as plain values too."""
        return to_plain(value)


class PlainModel(Model):
    """A :class:`~rlmesh.models.model.Model` that sees plain Python values (``rlmesh.Model``).

    Observations reach ``predict`` and ``predict_batch`` as lists and Python scalars; actions
    may be returned as plain values too and are converted to the action space's dtype.
    """

    plain = True


class SandboxEnv(NumpySandboxEnv, RemoteEnv):
    """A remote env served from a sandbox it owns, with built-in Python values.

    Same arguments and behaviour as :class:`rlmesh.numpy.SandboxEnv`, with the values of
    :class:`RemoteEnv` (``rlmesh.SandboxEnv``).
    """
