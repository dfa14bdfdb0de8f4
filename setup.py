"""The optional C extension: slot steps compiled (``rlmesh.transport.fastslots``).

Everything else about the project is in ``pyproject.toml``. The extension is optional: where
it does not compile (no C compiler), the install goes on without it and rlmesh runs its pure
Python path. ``RLMESH_BUILD_EXTENSIONS=0`` leaves it out on purpose (a pure-Python wheel,
as the sandboxes install).
"""

import os

from setuptools import Extension, setup

BUILD = os.environ.get("RLMESH_BUILD_EXTENSIONS", "1") not in ("0", "")

setup(ext_modules=[
    Extension("rlmesh.transport._fastslots", ["src/rlmesh/transport/_fastslots.c"],
              optional=True,
              extra_compile_args=["-O2"]),
] if BUILD else [])
