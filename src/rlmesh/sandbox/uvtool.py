"""Running the ``uv`` command: found once, offline first, its own message on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from rlmesh.errors import SandboxError

__all__ = ["find_uv", "run_uv"]

_HOW_TO_GET_UV = (
    "uv is not on PATH (set RLMESH_UV to its path to use another one). Install it with "
    "'pip install uv' or see https://docs.astral.sh/uv/getting-started/installation/")


def find_uv() -> str:
    """The path of the ``uv`` executable (``$RLMESH_UV``, else ``uv`` on ``PATH``).

    Raises:
        SandboxError: uv is not installed (the message says how to get it).
    """
    explicit = os.environ.get("RLMESH_UV")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise SandboxError(f"RLMESH_UV={explicit!r} is not an executable file")
        return explicit
    found = shutil.which("uv")
    if found is None:
        raise SandboxError(_HOW_TO_GET_UV)
    return found


def _run(argv: list[str], timeout: float, extra_env: Mapping[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(extra_env or {})
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"'uv {argv[1]}' did not finish within {timeout:g} s") from exc


def run_uv(args: Sequence[str], *, what: str, timeout: float = 600.0,
           offline_first: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run ``uv ARGS``; returns its stdout.

    With ``offline_first`` it first runs with ``--offline`` (the package cache only, which
    is fast and needs no network) and, if that fails, once more as given, unless uv is
    told to stay offline (``UV_OFFLINE=1``).

    Args:
        args: The arguments after ``uv``.
        what: What the command does, for the error message (``"installing gym==0.26.2"``).
        timeout: Seconds each attempt may take.
        offline_first: Try ``--offline`` first.
        env: Variables set for uv on top of this process's environment.

    Raises:
        SandboxError: uv failed; the message ends with uv's own error output.
    """
    uv = find_uv()
    if offline_first:
        attempt = _run([uv, *args, "--offline"], timeout, env)
        if attempt.returncode == 0 or _offline_only():
            return _checked(attempt, what)
    return _checked(_run([uv, *args], timeout, env), what)


def _offline_only() -> bool:
    return os.environ.get("UV_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _checked(result: subprocess.CompletedProcess[str], what: str) -> str:
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip()
        raise SandboxError(f"{what} failed (uv exited with {result.returncode}):\n{message}")
    return result.stdout
