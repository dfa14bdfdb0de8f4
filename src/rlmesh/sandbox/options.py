"""What a sandbox is built from and run with: :class:`SandboxBuild`, :class:`SandboxRuntime`.

The reference rlmesh splits a sandbox's arguments three ways: how the image (or environment)
is built, how the process is run, and the env's own ``make`` keywords. These two records are
the first two; a field passed as a plain keyword to ``SandboxEnv`` is refused with an error
that names the record it belongs to (see :func:`misplaced_field`).

rlmesh adds a backend that needs no Docker: ``SandboxRuntime(backend="uv")`` builds a uv
environment holding exactly ``SandboxBuild.packages`` plus this rlmesh, and runs the server
as a local process. ``backend="docker"`` is the reference's container route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

__all__ = [
    "BACKENDS",
    "SandboxBuild",
    "SandboxInfo",
    "SandboxRuntime",
    "misplaced_field",
]

BACKENDS = ("auto", "uv", "docker")
"""The sandbox backends: ``auto`` takes ``docker`` for an image source, else ``uv``."""


@dataclass(frozen=True)
class SandboxBuild:
    """How a sandbox's dependency stack is built.

    Args:
        base_image: Docker only: the image the sandbox image is built on.
        rlmesh_package: The rlmesh to install inside (a wheel path or a requirement). By
            default the caller's own version, built once as a wheel from a source checkout.
        packages: Requirements installed beside rlmesh (``"gym==0.26.2"``, ``"numpy<2"``).
        imports: Modules imported in the server before the env is made (they register
            env ids, as ``ale_py`` does).
        trust_remote_code: Allow sources that run code fetched at build time.
        allow_unpinned_hf: Allow an unpinned Hugging Face source (not supported yet).
        build_memory: Docker only: a memory ceiling for the image build (``"4g"``).
        python: uv only: the interpreter (``"3.11"``); by default the caller's version.
        compat: ``"gym"`` serves an env of the old ``gym`` package through the server-side
            adapter to Gymnasium's API; ``None`` serves the env as it is.
    """

    base_image: str | None = None
    rlmesh_package: str | None = None
    packages: Sequence[str] = ()
    imports: Sequence[str] = ()
    trust_remote_code: bool = False
    allow_unpinned_hf: bool = False
    build_memory: str | None = None
    python: str | None = None
    compat: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.packages, str) or isinstance(self.imports, str):
            raise TypeError("packages and imports are lists of strings, not one string")
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "imports", tuple(self.imports))
        if self.compat not in (None, "gym"):
            raise ValueError(f"compat must be None or 'gym', got {self.compat!r}")


@dataclass(frozen=True)
class SandboxRuntime:
    """How a sandbox's server process is run.

    Args:
        gpus: Docker only: ``--gpus`` (``"all"``, ``"device=0"``).
        devices: Docker only: host devices passed through (``--device``).
        volumes: Docker only: bind mounts, ``{host_path: container_path}`` or
            ``"host:container[:ro]"`` strings.
        user: Docker only: the user the container runs as.
        backend: ``"uv"``, ``"docker"`` or ``"auto"`` (the default: Docker for an image
            source, uv otherwise).
        start_timeout_seconds: How long building and starting may take before the sandbox
            gives up, with the tail of the server's log in the error.
    """

    gpus: str | int | None = None
    devices: Sequence[str] = ()
    volumes: Mapping[str, str] | Sequence[str] = field(default_factory=tuple)
    user: str | None = None
    backend: str = "auto"
    start_timeout_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if not self.start_timeout_seconds > 0:
            raise ValueError("start_timeout_seconds must be > 0")


@dataclass(frozen=True)
class SandboxInfo:
    """Where a running sandbox is and what it was made from (``SandboxEnv.sandbox``).

    Args:
        requested_source: The source as the caller gave it.
        resolved_source: What it resolved to (``"gym://CartPole-v1"``, ``"image://img"``).
        address: The address its server listens on.
        container_id: The container's id (Docker), or ``"pid:<n>"`` for a uv process.
        backend: ``"uv"`` or ``"docker"``.
        environment: The uv environment's directory or the image's id.
    """

    requested_source: str
    resolved_source: str
    address: str
    container_id: str
    backend: str = "docker"
    environment: str = ""


def misplaced_field(name: str) -> str | None:
    """Which record a keyword belongs to, if it is a build or runtime field.

    Args:
        name: A keyword passed to a sandbox constructor.

    Returns:
        ``"build"`` or ``"runtime"``, or ``None`` for a keyword of neither (a make keyword).
    """
    if name in {f.name for f in fields(SandboxBuild)}:
        return "build"
    if name in {f.name for f in fields(SandboxRuntime)}:
        return "runtime"
    return None
