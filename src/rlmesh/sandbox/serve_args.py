"""The command line a sandbox's server runs with: ``rlmesh serve`` or ``rlmesh serve-model``.

Everything crosses as text: the env's ``make`` keywords as a JSON object (never pickled), so
they must be JSON values (numbers, strings, booleans, ``None``, lists and dicts of them).
"""

from __future__ import annotations

import json
import os

from rlmesh.sandbox.runner import Launch

__all__ = ["serve_argv"]


def _kwargs_json(launch: Launch) -> str:
    try:
        return json.dumps(dict(launch.make_kwargs), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a sandbox's make keywords cross to its server as JSON: {exc}; "
                        "pass numbers, strings, booleans, None, lists and dicts") from exc


def serve_argv(launch: Launch, directory: str) -> list[str]:
    """The arguments after ``python -m rlmesh`` for ``launch``.

    The server listens on ``unix://DIRECTORY/env.sock`` and writes its address to
    ``DIRECTORY/ready``.

    Raises:
        TypeError: A make keyword is not a JSON value.
        ValueError: ``vectorization_mode`` is not ``None`` or ``"sync"``.
    """
    where = ["--address", f"unix://{os.path.join(directory, 'env.sock')}",
             "--ready-file", os.path.join(directory, "ready")]
    if launch.kind == "model":
        return ["serve-model", launch.target, *where]
    if launch.vectorization_mode not in (None, "sync"):
        raise ValueError(f"vectorization_mode {launch.vectorization_mode!r}: a sandbox "
                         "serves its copies as one SyncVectorEnv (None or 'sync')")
    argv = ["serve", launch.target, *where]
    if launch.make_kwargs:
        argv += ["--kwargs", _kwargs_json(launch)]
    for module in launch.build.imports:
        argv += ["--import", module]
    if launch.num_envs > 1:
        argv += ["--num-envs", str(launch.num_envs)]
    if launch.build.compat:
        argv += ["--compat", launch.build.compat]
    return argv
