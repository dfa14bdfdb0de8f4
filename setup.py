"""The optional C extension: slot steps compiled (``rlmesh.transport.fastslots``).

Everything else about the project is in ``pyproject.toml``. The extension is optional: where
it does not compile (no C compiler), the install goes on without it and rlmesh runs its pure
Python path. ``RLMESH_BUILD_EXTENSIONS=0`` leaves it out on purpose (a pure-Python wheel,
as the sandboxes install).
"""

import atexit
import os
import shutil
import tempfile

from setuptools import Extension, setup

BUILD = os.environ.get("RLMESH_BUILD_EXTENSIONS", "1") not in ("0", "")
# A fresh build directory for every build, removed after it: setuptools never deletes what
# an earlier build left in ./build, so a module removed from src/ would ship in later wheels.
BUILD_BASE = tempfile.mkdtemp(prefix="rlmesh-build-")
atexit.register(shutil.rmtree, BUILD_BASE, True)

setup(
    ext_modules=[
        Extension("rlmesh.transport._fastslots", ["src/rlmesh/transport/_fastslots.c"],
                  optional=True, extra_compile_args=["-O2"]),
    ] if BUILD else [],
    options={"build": {"build_base": BUILD_BASE}},
)
