"""Talking to the Docker engine: one ``docker`` command at a time, errors made typed.

Every Docker call of the sandbox goes through :func:`docker`, which runs the ``docker`` CLI
(it honours ``DOCKER_HOST`` and the CLI's own context), captures its output as text and turns a
failure into :class:`rlmesh.errors.SandboxError` carrying the command and Docker's own message.
Nothing here is shell-interpreted: arguments are passed as a list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from rlmesh.errors import SandboxError

__all__ = ["DockerResult", "daemon_problem", "docker", "docker_binary"]

_DAEMON_PROBE_SECONDS = 10.0


class DockerResult:
    """What one ``docker`` command printed.

    Args:
        returncode: Its exit status.
        stdout: What it printed, as text.
        stderr: What it printed on stderr, as text.
    """

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0."""
        return self.returncode == 0


def docker_binary() -> str:
    """The ``docker`` CLI on ``PATH``.

    Raises:
        SandboxError: No ``docker`` command is installed.
    """
    found = shutil.which("docker")
    if found is None:
        raise SandboxError("the Docker backend needs the `docker` command on PATH and a "
                           "running Docker daemon; install Docker, or use "
                           "SandboxRuntime(backend='uv')")
    return found


def docker(args: Sequence[str], *, timeout: float = 60.0, check: bool = True,
           stdin: str | None = None, secrets: Mapping[str, str] | None = None) -> DockerResult:
    """Run ``docker ARGS`` and return what it printed.

    Args:
        args: The arguments after ``docker``.
        timeout: Seconds the command may take.
        check: Raise on a non-zero exit status (else return it).
        stdin: Text written to the command's standard input.
        secrets: Environment variables for the ``docker`` process only (pass them on as
            ``--env NAME``, so their values never appear on a command line).

    Raises:
        SandboxError: The command failed (with ``check``) or did not finish within
            ``timeout``; the message holds the command and Docker's error output.
    """
    command = [docker_binary(), *args]
    try:
        env = {**os.environ, **secrets} if secrets else None
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              input=stdin, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"`docker {' '.join(args[:3])} ...` did not finish within "
                           f"{timeout:g} s") from exc
    result = DockerResult(done.returncode, done.stdout, done.stderr)
    if check and not result.ok:
        message = (result.stderr or result.stdout).strip()[-4000:]
        raise SandboxError(f"`docker {' '.join(args[:3])}` failed (exit {result.returncode}): "
                           f"{message}")
    return result


def daemon_problem() -> str | None:
    """Why no Docker daemon can be used here, or ``None`` when one answers.

    Returns:
        A sentence naming the problem (no CLI, or the daemon's own error), for skips and
        errors; ``None`` when ``docker version`` reaches a server.
    """
    if shutil.which("docker") is None:
        return "the `docker` command is not installed"
    try:
        result = docker(["version", "--format", "{{.Server.Version}}"],
                        timeout=_DAEMON_PROBE_SECONDS, check=False)
    except SandboxError as exc:
        return str(exc)
    if not result.ok or not result.stdout.strip():
        detail = (result.stderr or result.stdout).strip().splitlines()
        return "no Docker daemon answers: " + (detail[-1] if detail else "no output")
    return None
