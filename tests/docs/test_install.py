"""The install story, for real: this project installed from its source into a fresh venv.

README and docs/install.md say to install rlmesh from a checkout (or its git URL), never from
the public package index (where ``rlmesh`` is another project). Here the checkout is installed
with an extra into a new virtual environment, the command works there, a missing extra's
error names the command that installs *this* copy, and the wheel carries ``py.typed``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(240)


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH (README's commands need it)")
    return found


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=200, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def test_a_checkout_installs_with_an_extra_into_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(uv(), "pip", "install", "--quiet", "--python", python, f"{ROOT}[cli]")
    assert run(venv / "bin" / "rlmesh", "--version").stdout.strip().startswith("rlmesh ")
    # rich came with the extra; matplotlib (the plot extra) did not, and the error says how
    # to install it for this copy: from the checkout it came from.
    probe = run(python, "-c", "import rich\nfrom rlmesh.evaluation import plot, results\n"
                "try:\n    plot.plot_run(results.RunResult(), 'x.png')\n"
                "except ImportError as exc:\n    print(exc)", cwd=tmp_path)
    assert f"pip install '{ROOT}[plot]'" in probe.stdout, probe.stdout
    assert "public package index is another project" in probe.stdout


def test_the_wheel_carries_py_typed(tmp_path: Path) -> None:
    run(uv(), "build", "--quiet", "--wheel", "--out-dir", tmp_path, ROOT)
    wheel = next(tmp_path.glob("rlmesh-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert "rlmesh/py.typed" in archive.namelist()


def test_the_wheel_carries_the_compiled_steps_where_they_build(tmp_path: Path) -> None:
    run(uv(), "build", "--quiet", "--wheel", "--out-dir", tmp_path, ROOT)  # (from its sdist)
    wheel = next(tmp_path.glob("rlmesh-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    compiled = sorted(n.split(".")[0] for n in names
                      if n.startswith("rlmesh/transport/_fast") and n.endswith(".so"))
    assert not [n for n in names if n.endswith((".c", ".h"))]  # (the sdist's, not the wheel's)
    if not compiled and os.environ.get("RLMESH_REQUIRE_EXTENSIONS") != "1":
        pytest.skip("no C compiler here: the wheel is pure Python (as it may be)")
    assert compiled == ["rlmesh/transport/_fastframes", "rlmesh/transport/_fastslots"], wheel
    assert "-py3-none-any" not in wheel.name  # (a wheel with an extension names its platform)


def fresh_checkout(into: Path) -> Path:
    """The project's sources as a fresh clone has them: no build directory, nothing built."""
    into.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, into / name)
    shutil.copytree(ROOT / "src", into / "src", ignore=shutil.ignore_patterns(
        "__pycache__", "*.so", "*.egg-info"))
    return into


def test_without_a_compiler_the_install_goes_on_in_python(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    source = fresh_checkout(tmp_path / "checkout")
    no_compiler = {**os.environ, "CC": str(tmp_path / "no-such-cc")}
    run(uv(), "pip", "install", "--quiet", "--no-cache", "--python", python, str(source),
        env=no_compiler)
    for face in ("fastslots", "fastframes"):
        probe = run(python, "-c", f"from rlmesh.transport import {face} as f\n"
                    "print(f.ACCELERATED)\nprint(f.why_not())", cwd=tmp_path)
        accelerated, why = probe.stdout.splitlines()
        assert accelerated == "False" and "the C extension is not built" in why, probe.stdout
    # The same steps, in Python: a served env steps over the link, then over TCP alone.
    script = ("import gymnasium as gym, rlmesh\n"
              "from rlmesh.client.options import ConnectOptions\n"
              "from rlmesh.numpy import RemoteEnv\n"
              "server = rlmesh.EnvServer(gym.make('CartPole-v1'), '127.0.0.1:0').start()\n"
              "with RemoteEnv(server.address, timeout=10) as env:\n"
              "    env.reset(seed=0)\n"
              "    print(env.contract['shm_link_steps'], env.step(1)[1])\n"
              "server.shutdown()\n"
              "server = rlmesh.EnvServer(gym.make('CartPole-v1'), '127.0.0.1:0').start()\n"
              "tcp = ConnectOptions(same_host=False, timeout=10)\n"
              "with RemoteEnv(server.address, options=tcp) as env:\n"
              "    env.reset(seed=0)\n"
              "    print(env.contract['shm'], env.step(1)[1])\n"
              "server.shutdown()\n")
    assert run(python, "-c", script, cwd=tmp_path).stdout.split() == ["True", "1.0", "False",
                                                                      "1.0"]
