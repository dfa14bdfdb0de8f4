"""Benchmarks for rlmesh (``bench_core``: remote steps vs in-process and raw sockets)."""
