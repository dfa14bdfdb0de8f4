"""Policies: ``Model``, the random baseline, remote and served models."""

__all__: list[str] = []
