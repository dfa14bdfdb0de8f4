"""Room for adapters: envs and policies from other libraries, served and driven as Gymnasium.

Empty today. What lands here: one module per foreign API (dm_env, PettingZoo...) turning its
envs into what :class:`~rlmesh.EnvServer` serves and its agents into policies. It sits beside
the array backends (:mod:`rlmesh.backends`), below the public faces. See
``docs/architecture.md``.
"""

__all__: list[str] = []
