"""``rlmesh.EpisodeSession`` and ``rlmesh.session``.

:class:`EpisodeSession` is rlmesh's first hand-driven loop: it connects at once and its
``reset`` returns the observation alone. ``rlmesh.session(...)`` returns the reference
rlmesh's :class:`~rlmesh.evaluation.session.Session`, whose ``reset`` returns
``(obs, info)`` like Gymnasium's. Both are one engine.
"""

from __future__ import annotations

from typing import Any

from rlmesh.evaluation.session import Session

__all__ = ["EpisodeSession", "session"]


class EpisodeSession(Session):
    """A model and a (single) env, stepped by hand; finished episodes are recorded.

    Unlike :class:`rlmesh.Session` it connects (and loads the model) when it is made, and
    :meth:`reset` returns only the first observation.

    Example::

        with rlmesh.EpisodeSession(model, "127.0.0.1:5555") as s:
            s.reset(seed=0)
            while not s.done:
                s.step()              # the model's action; or s.step(my_action)
        print(s.episodes[0].reward)
    """

    def __init__(self, model: Any, env: Any, **options: Any) -> None:
        super().__init__(model, env, **options)
        self._open()

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> Any:
        """Start an episode; returns its first observation."""
        return super().reset(seed=seed, options=options)[0]


def session(model: Any, env: Any, **options: Any) -> Session:
    """Drive ``env`` by hand with ``model``: a :class:`rlmesh.Session`.

    Args:
        model: An :class:`rlmesh.Model`, ``rlmesh.RANDOM_SAMPLE``, a ``RemoteModel`` or a
            callable ``observation -> action``.
        env: A Gymnasium env (local or remote) or an endpoint address.
        **options: ``max_episode_steps``, ``max_episode_seconds``, ``hooks``, ``close_env``,
            ``instruction``, ``execution_horizon``, ``view``, ``trust_entrypoints`` (see
            :class:`rlmesh.Session`).

    Returns:
        The session; its ``reset`` returns ``(obs, info)``. It connects on first use.
    """
    return Session(model, env, **options)
