"""``rlmesh.ray`` imports Ray only on first use, and without Ray names the extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=50)


def test_importing_the_face_does_not_import_ray() -> None:
    done = run("import sys, rlmesh, rlmesh.ray\n"
               "assert 'ray' not in sys.modules, 'ray imported'\n"
               "assert rlmesh.ray.serve is not None\n")
    assert done.returncode == 0, done.stderr


def test_without_ray_the_error_names_the_extra() -> None:
    done = run("import sys\n"
               "sys.modules['ray'] = None  # as if Ray were not installed\n"
               "import rlmesh.ray\n"
               "from rlmesh.extras import MissingExtraError\n"
               "try:\n"
               "    rlmesh.ray.serve('CartPole-v1', 1)\n"
               "except MissingExtraError as exc:\n"
               "    print(exc)\n"
               "else:\n"
               "    raise SystemExit('no error')\n")
    assert done.returncode == 0, done.stderr
    assert "rlmesh.ray needs Ray" in done.stdout and "'ray' extra" in done.stdout
    assert "ray]" in done.stdout  # the command installs this project with the extra


def test_bad_arguments_are_refused_without_a_cluster() -> None:
    done = run("import sys\n"
               "sys.modules['ray'] = None\n"
               "import rlmesh.ray\n"
               "for kwargs in ({'num_envs_per_server': 0}, {'strategy': 'ANY'}):\n"
               "    try:\n"
               "        rlmesh.ray.serve('CartPole-v1', 1, **kwargs)\n"
               "    except ValueError as exc:\n"
               "        print('refused', exc)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused") == 2
