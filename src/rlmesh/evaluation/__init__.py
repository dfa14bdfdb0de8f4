"""Evaluation: ``run``, ``evaluate``, hand-driven episodes, hooks, results, reports."""

__all__: list[str] = []
