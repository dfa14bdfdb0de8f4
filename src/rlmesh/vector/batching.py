"""Gymnasium batches along the sub-env axis: split, joined, and read lane by lane.

Several vector endpoints (say, one per worker process) act as one vector env by slicing the
batched actions into per-endpoint chunks and joining the per-endpoint results back
(:func:`split_batch`, :func:`join_batches`). A vector env's lanes are read one at a time by
:func:`pick`, :func:`split_lanes`, :func:`lane_info` and :func:`final_info` (evaluation,
``rlmesh.sb3`` and models batching single-env policies use them). The
layout follows ``gymnasium.vector.utils.batch_space``: arrays for Box, Discrete,
MultiDiscrete and MultiBinary; dicts and tuples of batches for Dict and Tuple; a tuple of
items for everything else (Text, Graph, Sequence, OneOf).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces as gs

__all__ = [
    "ARRAY_SPACES", "check_reset_mask", "expand_seeds", "final_info", "join_batches", "lane_info",
    "pick",
    "place_info", "split_batch", "split_lanes",
]

ARRAY_SPACES = (gs.Box, gs.Discrete, gs.MultiDiscrete, gs.MultiBinary)
"""Spaces whose batches are one array along the sub-env axis."""


def split_batch(space: gs.Space[Any], batch: Any, bounds: Sequence[tuple[int, int]]) -> list[Any]:
    """Cut ``batch`` (of the single space ``space``) into the given ``[lo, hi)`` ranges."""
    if isinstance(space, ARRAY_SPACES):
        array = np.asarray(batch)
        return [array[lo:hi] for lo, hi in bounds]
    if isinstance(space, gs.Dict):
        per_key = {k: split_batch(s, batch[k], bounds) for k, s in space.spaces.items()}
        return [{k: parts[i] for k, parts in per_key.items()} for i in range(len(bounds))]
    if isinstance(space, gs.Tuple):
        per_item = [split_batch(s, b, bounds) for s, b in zip(space.spaces, batch, strict=True)]
        return [tuple(parts[i] for parts in per_item) for i in range(len(bounds))]
    items = tuple(batch)
    return [items[lo:hi] for lo, hi in bounds]


def join_batches(space: gs.Space[Any], batches: Sequence[Any]) -> Any:
    """Join per-endpoint batches of the single space ``space`` into one batch."""
    if isinstance(space, ARRAY_SPACES):
        return np.concatenate([np.asarray(b) for b in batches], axis=0)
    if isinstance(space, gs.Dict):
        return {k: join_batches(s, [b[k] for b in batches]) for k, s in space.spaces.items()}
    if isinstance(space, gs.Tuple):
        return tuple(join_batches(s, [b[i] for b in batches])
                     for i, s in enumerate(space.spaces))
    joined: tuple[Any, ...] = ()
    for b in batches:
        joined += tuple(b)
    return joined


def place_info(merged: dict[str, Any], info: dict[str, Any], offset: int,
               total: int) -> dict[str, Any]:
    """Copy one endpoint's ``_key``-masked infos into the whole batch's, at ``offset``.

    Arrays keep the dtype Gymnasium's ``_add_info`` gave them on the endpoint; sub-envs
    that did not report a key keep zeros and a false mask, as in Gymnasium.

    Args:
        merged: The infos of the whole batch so far (updated in place).
        info: One endpoint's batched infos.
        offset: Index of that endpoint's first sub-env in the whole batch.
        total: Sub-envs in the whole batch.

    Returns:
        ``merged``.
    """
    for key, value in info.items():
        mask = info.get(f"_{key}")
        if mask is None:
            continue  # a mask itself, handled with its key
        mask = np.asarray(mask, dtype=np.bool_)
        if isinstance(value, dict):
            merged[key] = place_info(merged.get(key, {}), value, offset, total)
        else:
            value = np.asarray(value) if not isinstance(value, np.ndarray) else value
            target = merged.get(key)
            if target is None:
                if value.dtype.kind == "O":
                    target = np.full((total, *value.shape[1:]), None, dtype=object)
                else:
                    target = np.zeros((total, *value.shape[1:]), dtype=value.dtype)
            target[offset : offset + len(value)] = value
            merged[key] = target
        full_mask = merged.get(f"_{key}")
        if full_mask is None:
            full_mask = np.zeros(total, dtype=np.bool_)
        full_mask[offset : offset + len(mask)] = mask
        merged[f"_{key}"] = full_mask
    return merged


def expand_seeds(seed: int | Sequence[int | None] | None, count: int) -> list[int | None]:
    """Per-sub-env seeds, as Gymnasium's vector envs derive them.

    ``None`` gives ``None`` for all, an int ``s`` gives ``s, s + 1, ...``, and a sequence is
    taken as is (its length must be ``count``).

    Raises:
        ValueError: If a sequence has the wrong length.
    """
    if seed is None:
        return [None] * count
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(count)]
    seeds = [None if s is None else int(s) for s in seed]
    if len(seeds) != count:
        raise ValueError(f"If seeds are passed as a list the length must match "
                         f"num_envs={count} but got length={len(seeds)}.")
    return seeds


def check_reset_mask(mask: Any, count: int) -> np.ndarray[Any, Any]:
    """Validate ``options["reset_mask"]`` as Gymnasium's vector envs do."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"`options['reset_mask']` must be a numpy array, got {type(mask)}")
    if mask.shape != (count,):
        raise ValueError(
            f"`options['reset_mask']` must have shape `({count},)`, got {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"`options['reset_mask']` must have `dtype=np.bool_`, got {mask.dtype}")
    if not mask.any():
        raise ValueError("`options['reset_mask']` must contain at least one True value")
    return mask


# -- one lane at a time ----------------------------------------------------------------------------


def pick(batch: Any, k: int) -> Any:
    """Lane ``k`` of a batched value (array, dict or tuple of batches)."""
    if isinstance(batch, dict):
        return {key: pick(value, k) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(pick(value, k) for value in batch)
    return batch[k]


def split_lanes(batch: Any) -> list[Any]:
    """Every lane of a batched value (array, dict or tuple of batches), in order."""
    if isinstance(batch, dict):
        keys = list(batch)
        parts = [split_lanes(batch[k]) for k in keys]
        return [dict(zip(keys, values, strict=True)) for values in zip(*parts, strict=True)]
    if isinstance(batch, tuple):
        parts = [split_lanes(v) for v in batch]
        return [tuple(values) for values in zip(*parts, strict=True)]
    return list(batch)


def lane_info(infos: Any, k: int) -> dict[str, Any]:
    """Lane ``k``'s entries of a Gymnasium vector info (keys with a ``_key`` mask)."""
    if not isinstance(infos, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not bool(mask[k]):
            continue
        try:
            out[key] = lane_info(value, k) if isinstance(value, dict) else value[k]
        except (TypeError, IndexError, KeyError):
            out[key] = value  # (a value that is not batched: the same for every lane)
    return out


def final_info(infos: Any, k: int) -> dict[str, Any]:
    """Lane ``k``'s last info of its episode: ``final_info`` under same-step autoreset."""
    if isinstance(infos, dict) and isinstance(infos.get("final_info"), dict):
        mask = infos.get("_final_info")
        if mask is None or bool(mask[k]):
            return lane_info(infos["final_info"], k)
    return lane_info(infos, k)
