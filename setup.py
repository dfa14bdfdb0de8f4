"""The optional C extensions: slot steps and fixed frames compiled.

``rlmesh.transport.fastslots`` and ``rlmesh.transport.fastframes`` are their Python faces.

Everything else about the project is in ``pyproject.toml``. The extensions are optional:
where they do not compile (no C compiler), the install goes on without them and rlmesh runs
its pure Python paths. ``RLMESH_BUILD_EXTENSIONS=0`` leaves them out on purpose (a
pure-Python wheel, as the sandboxes install).
"""

import atexit
import glob
import os
import shutil
import tempfile

from setuptools import Extension, setup

BUILD = os.environ.get("RLMESH_BUILD_EXTENSIONS", "1") not in ("0", "")
# A fresh build directory for every build, removed after it: setuptools never deletes what
# an earlier build left in ./build, so a module removed from src/ would ship in later wheels.
BUILD_BASE = tempfile.mkdtemp(prefix="rlmesh-build-")
atexit.register(shutil.rmtree, BUILD_BASE, True)
# Each extension is one translation unit: its .c file includes its parts (_frames_*.h,
# _slots_*.h) and what both share (_fastcommon.h). An edit of any rebuilds both.
PARTS = sorted(glob.glob("src/rlmesh/transport/_*.h"))

setup(
    ext_modules=[
        Extension(f"rlmesh.transport.{name}", [f"src/rlmesh/transport/{name}.c"],
                  depends=PARTS, optional=True,
                  extra_compile_args=["-O2"])
        for name in ("_fastslots", "_fastframes")
    ] if BUILD else [],
    options={"build": {"build_base": BUILD_BASE}},
)
