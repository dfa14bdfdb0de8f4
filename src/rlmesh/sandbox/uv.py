"""The uv backend: a server in a uv environment holding exactly the requested packages.

:class:`UvRunner` builds (once, cached; see :mod:`rlmesh.sandbox.cache`) a uv virtual
environment with ``SandboxBuild.packages`` and this rlmesh as a wheel
(:mod:`rlmesh.sandbox.wheel`), keyed by the Python version, the sorted requirements, the
wheel's identity and the compat mode. It then runs ``<env>/bin/python -m rlmesh serve``
there, listening on a unix socket in a private temporary directory, and waits for its
ready file.

Nothing outlives its owner: the server holds the read end of a pipe whose write end only
the owner has (the liveness pipe of :mod:`rlmesh.server.workers`, handed over with the
hidden ``--parent-fd`` option of ``rlmesh serve``), and stops when it reads EOF, so it also
stops when the owner is killed with SIGKILL. :meth:`UvRunning.stop` and interpreter exit
stop it sooner.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from rlmesh.errors import SandboxError
from rlmesh.protocol import LIBRARY_VERSION
from rlmesh.sandbox.cache import build_once, cache_key, cache_root, touch
from rlmesh.sandbox.oldstacks import install_old_gym, is_old_gym, with_compat_pins
from rlmesh.sandbox.runner import Launch, Runner, Running
from rlmesh.sandbox.serve_args import serve_argv
from rlmesh.sandbox.uvtool import run_uv
from rlmesh.sandbox.wheel import RlmeshPackage, rlmesh_package

__all__ = ["UvRunner", "UvRunning", "default_python", "ensure_env", "spawn_in_env"]

_live: weakref.WeakSet[UvRunning] = weakref.WeakSet()


def _stop_live() -> None:
    for running in list(_live):
        running.stop()


atexit.register(_stop_live)


def default_python() -> str:
    """The caller's Python version as ``"X.Y"`` (the default of a sandbox's interpreter)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def env_python(env: Path) -> Path:
    """The interpreter of the uv environment ``env``."""
    return env / "bin" / "python"


def ensure_env(packages: Sequence[str], *, python: str | None = None,
               package: RlmeshPackage | None = None, compat: str | None = None) -> Path:
    """The cached uv environment holding ``packages`` and this rlmesh, built if missing.

    Args:
        packages: Requirements (``"gym==0.26.2"``, ``"numpy<2"``).
        python: The interpreter version (``"3.11"``) or path; the caller's version by default.
        package: The rlmesh to install (default: :func:`rlmesh_package`).
        compat: The compat mode the server runs with (part of the key).

    Raises:
        SandboxError: uv is missing, or a requirement cannot be resolved (uv's message).
    """
    python = python or default_python()
    package = package or rlmesh_package()
    requirements = sorted(set(with_compat_pins(packages, compat)))
    describe = {"kind": "env", "python": python, "requirements": requirements,
                "rlmesh": package.identity, "rlmesh_version": LIBRARY_VERSION,
                "compat": compat}

    def build(directory: Path) -> None:
        run_uv(["venv", "--quiet", "--relocatable", "--python", python, str(directory)],
               what=f"creating a Python {python} environment")
        modern = [r for r in requirements if not is_old_gym(r)]
        listed = " ".join(modern) or "nothing else"
        # --compile-bytecode: every later start imports from .pyc, not from source
        run_uv(["pip", "install", "--quiet", "--compile-bytecode", "--python",
                str(env_python(directory)), *modern, package.requirement],
               what=f"installing {listed} beside rlmesh")
        legacy = [r for r in requirements if is_old_gym(r)]
        if legacy:  # last, so that uv never reads their old metadata
            install_old_gym(env_python(directory), legacy)

    entry = build_once(cache_root() / "envs" / cache_key(describe), build, describe)
    touch(entry)
    return entry


def _child_environment() -> dict[str, str]:
    """The caller's environment, without what would point the child at the caller's stack."""
    hidden = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONUSERBASE")
    return {**{k: v for k, v in os.environ.items() if k not in hidden},
            "PYTHONUNBUFFERED": "1", "PYTHONNOUSERSITE": "1"}


def spawn_in_env(env: Path, args: Sequence[str], *, output: IO[bytes] | int | None,
                 pass_fds: Sequence[int] = (), private_dir: str | None = None
                 ) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m rlmesh ARGS --parent-fd N`` in ``env``, tied to this process.

    ``private_dir`` (the server's socket directory) is removed by the server itself once
    the pipe closes, so that it is gone even when this process was killed.

    Returns:
        The process and the write end of its liveness pipe: the child stops when it is
        closed (by :func:`os.close`, or when this process dies).
    """
    readable, writable = os.pipe()
    try:
        process = subprocess.Popen(
            [str(env_python(env)), "-m", "rlmesh", *args, "--parent-fd", str(readable)],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT if output
            is not None else None, pass_fds=(readable, *pass_fds),
            env={**_child_environment(), **({"RLMESH_SANDBOX_DIR": private_dir}
                                           if private_dir else {})},
            start_new_session=True)
    except BaseException:
        os.close(writable)
        raise
    finally:
        os.close(readable)
    return process, writable


class UvRunning(Running):
    """A server running in a uv environment, owned by this process."""

    def __init__(self, process: subprocess.Popen[bytes], liveness: int, directory: str,
                 environment: Path) -> None:
        self.process = process
        self._liveness = liveness
        self.directory = directory
        self.environment = str(environment)
        self.address = ""
        self.ident = f"pid:{process.pid}"
        _live.add(self)

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.poll() is None

    def logs(self, tail: int = 50) -> str:
        """The last ``tail`` lines of the server's output."""
        try:
            text = Path(self.directory, "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-tail:])

    def wait_ready(self, deadline: float) -> str:
        """Wait for the ready file; returns the address the server listens on."""
        ready = Path(self.directory, "ready")
        while True:
            with contextlib.suppress(OSError):
                address = ready.read_text().strip()
                if address:
                    self.address = address
                    return address
            code = self.process.poll()
            if code is not None:
                raise SandboxError(f"the sandbox server exited with status {code} before it "
                                   f"was ready; its log ends with:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the sandbox server was not ready in time; its log ends "
                                   f"with:\n{self.logs()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (liveness pipe and SIGTERM, then SIGKILL) and remove its files."""
        if self._liveness >= 0:
            os.close(self._liveness)
            self._liveness = -1
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
        _live.discard(self)


class UvRunner(Runner):
    """Runs sandboxes as local processes in cached uv environments."""

    name = "uv"

    def start(self, launch: Launch, *, timeout: float) -> UvRunning:
        """Build (or reuse) the environment, start the server, return once it is ready.

        Raises:
            SandboxError: A Docker-only option was given, uv is missing, a requirement
                cannot be resolved (uv's own message), or the server did not come up (the
                tail of its log).
        """
        _refuse_docker_options(launch)
        deadline = time.monotonic() + timeout
        build = launch.build
        env = ensure_env(build.packages, python=build.python,
                         package=rlmesh_package(build.rlmesh_package), compat=build.compat)
        directory = tempfile.mkdtemp(prefix="rlmesh-sandbox-")
        try:
            with open(os.path.join(directory, "server.log"), "ab") as log:
                process, liveness = spawn_in_env(env, serve_argv(launch, directory), output=log,
                                                 private_dir=directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        running = UvRunning(process, liveness, directory, env)
        try:
            running.wait_ready(deadline)
        except BaseException:
            running.stop()
            raise
        return running


def _refuse_docker_options(launch: Launch) -> None:
    runtime, build = launch.runtime, launch.build
    docker_only = {"gpus": runtime.gpus, "devices": runtime.devices,
                   "volumes": runtime.volumes, "user": runtime.user,
                   "base_image": build.base_image, "build_memory": build.build_memory}
    given = sorted(name for name, value in docker_only.items() if value)
    if given:
        raise SandboxError(f"{', '.join(given)} apply to the Docker backend only; the uv "
                           "backend runs the server as a local process")
