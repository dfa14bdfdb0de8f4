"""Stacks for the old ``gym`` package: the numpy it needs, and gym releases uv cannot install.

* No release of the old ``gym`` runs on numpy 2 (gym 0.26.2, its last, calls ``np.bool8``), so
  a ``compat="gym"`` stack gets ``numpy<2`` unless the caller names a numpy of their own.
* gym before 0.26 (0.21 above all, the mujoco-py era's) ships a ``setup.py`` whose metadata
  modern tools reject: uv refuses it. pip installs it with the build tools of its day
  (``setuptools==65.5.0``, ``wheel==0.38.4``, ``--no-build-isolation``), as the isolation
  findings measured, so such a requirement is installed that way, after everything else.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from rlmesh.errors import SandboxError
from rlmesh.sandbox.uvtool import run_uv

__all__ = ["LEGACY_BUILD_TOOLS", "install_old_gym", "is_old_gym", "with_compat_pins"]

LEGACY_BUILD_TOOLS = ("pip<24.1", "setuptools==65.5.0", "wheel==0.38.4")
"""What builds gym 0.21 from its sdist."""
_OLD_GYM = re.compile(r"^\s*gym\s*(==|<=|<|~=)\s*0\.(1\d|2[0-5])(\.|\s|$)", re.IGNORECASE)
_NAME_END = re.compile(r"[<>=!~\[ @;]")


def is_old_gym(requirement: str) -> bool:
    """Whether ``requirement`` asks for a ``gym`` release before 0.26."""
    return _OLD_GYM.match(requirement) is not None


def with_compat_pins(packages: Sequence[str], compat: str | None) -> list[str]:
    """``packages``, plus ``numpy<2`` for ``compat="gym"`` when no numpy is asked for."""
    listed = list(packages)
    if compat == "gym" and not any(_name(p) == "numpy" for p in listed):
        listed.append("numpy<2")
    return listed


def _name(requirement: str) -> str:
    return _NAME_END.split(requirement.strip(), maxsplit=1)[0].strip().lower()


def install_old_gym(python: Path, requirements: Sequence[str], *,
                    timeout: float = 900.0) -> None:
    """Install old gym ``requirements`` into the environment of ``python`` with pip.

    Raises:
        SandboxError: pip could not build or install them (with the tail of its output).
    """
    run_uv(["pip", "install", "--quiet", "--python", str(python), *LEGACY_BUILD_TOOLS],
           what="installing pip and the build tools old gym releases need")
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-build-isolation", *requirements]
    environment = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=environment, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"pip did not install {' '.join(requirements)} within "
                           f"{timeout:g} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-30:])
        raise SandboxError(f"pip could not install {' '.join(requirements)} (with "
                           f"{', '.join(LEGACY_BUILD_TOOLS)} and --no-build-isolation, as "
                           f"gym releases before 0.26 need):\n{tail}")
