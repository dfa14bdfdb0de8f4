"""What the tests share, by concern: import from the module that names it.

* :mod:`tests.support.deps`: optional dependencies (``need``).
* :mod:`tests.support.net`: loopback ports.
* :mod:`tests.support.processes`: child processes, seen through ``/proc``.
* :mod:`tests.support.values`: codec round trips and strict value comparison.
* :mod:`tests.support.spaces`: every kind of Gymnasium space, and strict space comparison.
* :mod:`tests.support.episodes`: episodes played with Gymnasium directly, to compare against.

Fixtures live in ``tests/conftest.py``. ``tests`` is a package, so pytest puts the repository
root on ``sys.path`` and ``from tests.support.values import assert_same`` works everywhere.
"""
