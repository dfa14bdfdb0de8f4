"""Adapters in the runners: resolved once per env, applied around the model's predictor.

Before the first step, :func:`attach` reads the env's published tags (a remote env's contract
metadata, a local env's ``metadata``) and resolves them against the model's ``spec``: the
model is then bound to its own action width, and every predictor the runners make is
wrapped (:func:`adapt_one`, :func:`adapt_batch`) so that the model sees its payload and the
env gets its action. ``spec=rlmesh.NO_ADAPTER`` and the random baseline skip it, and so does
a model whose predict is an adapter's ``wrap_predict``; any other model without a spec facing a
tagged env is refused, since feeding it raw observations is almost never what was meant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.adapters.adapter import Adapter, AdapterBase
from rlmesh.adapters.model_spec import ModelSpec
from rlmesh.adapters.resolution import resolve
from rlmesh.adapters.roles import NO_ADAPTER
from rlmesh.adapters.tags import EnvTags
from rlmesh.errors import AdapterResolutionError
from rlmesh.evaluation.corners import lane_count
from rlmesh.vector.batching import pick

__all__ = ["adapt_batch", "adapt_one", "attach", "end_episode", "env_metadata"]


def env_metadata(env: Any) -> Mapping[str, Any]:
    """Where an env publishes its tags: a remote env's contract metadata, else ``metadata``."""
    contract = getattr(env, "env_contract", None)
    metadata = getattr(contract, "metadata", None) if contract is not None else None
    if metadata is None:
        metadata = getattr(env, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def attach(model: Any, metadata: Mapping[str, Any], observation_space: gs.Space[Any],
           action_space: gs.Space[Any], *, instruction: str | None = None,
           trust_entrypoints: bool = False) -> AdapterBase[Any] | None:
    """Resolve ``model``'s adapter for an env (and keep it on ``model.adapter``).

    Args:
        model: The policy about to play (``spec``: a ``ModelSpec``, an adapter, ``None`` or
            ``NO_ADAPTER``).
        metadata: The env's metadata, where its tags are published (:func:`env_metadata`).
        observation_space: One env's observation space.
        action_space: One env's action space.
        instruction: Text for the model's ``text/instruction`` inputs.
        trust_entrypoints: Import ``module:callable`` entrypoints the spec names.

    Returns:
        The adapter, or ``None`` when observations go to the model untouched.

    Raises:
        AdapterResolutionError: If the env is tagged and the model has no spec, the model
            has a spec and the env publishes no tags, or resolution fails.
    """
    spec = getattr(model, "spec", None)
    model.adapter = None
    if spec is NO_ADAPTER or getattr(model, "skips_adapters", False):
        return None
    tags = EnvTags.from_metadata(metadata)
    if spec is None:
        if tags is not None and not _adapts_itself(model):
            raise AdapterResolutionError(
                f"the env publishes adapter tags but {getattr(model, 'name', 'the model')!r} "
                "declares no spec: give it spec=rlmesh.adapters.ModelSpec(...) to be adapted, "
                "or spec=rlmesh.NO_ADAPTER to get the env's raw observations")
        return None
    adapter: AdapterBase[Any]
    if isinstance(spec, AdapterBase):
        adapter = spec
    elif isinstance(spec, ModelSpec):
        if tags is None:
            raise AdapterResolutionError(
                "the model declares a spec but the env publishes no adapter tags; serve the env "
                "with EnvServer(env, tags=...), or give the model spec=rlmesh.NO_ADAPTER")
        trust = trust_entrypoints or bool(getattr(model, "trust_entrypoints", False))
        adapter = resolve(tags, observation_space, action_space, spec, trust_entrypoints=trust)
        model.bind(observation_space, gs.Box(-np.inf, np.inf, (spec.output.dim,), np.float32))
    else:
        raise TypeError(f"a model's spec is a ModelSpec, an adapter or rlmesh.NO_ADAPTER, not "
                        f"{type(spec).__qualname__}")
    if instruction is not None and isinstance(adapter, Adapter):
        adapter.instruction = instruction
    model.adapter = adapter
    return adapter


def _adapts_itself(model: Any) -> bool:
    """Whether the model's predict is an adapter's ``wrap_predict`` (it takes raw values)."""
    predict = getattr(model, "_predict", None)
    return isinstance(getattr(predict, "adapter", None), AdapterBase)


def _as_array(action: Any) -> Any:
    detach = getattr(action, "detach", None)
    if callable(detach):  # a torch tensor: to the host first
        action = detach().cpu()
    return np.asarray(action) if not isinstance(action, (dict, tuple)) else action


def _observe(adapter: AdapterBase[Any]) -> Callable[[Any, Any], Any]:
    """``(observation, key) -> payload`` for ``adapter``.

    A resolved adapter keeps frame history per ``key`` (an episode); a custom one is one
    stream, and the key is unused.
    """
    if isinstance(adapter, Adapter):
        transform_obs = adapter.transform_obs
        return lambda observation, key: transform_obs(observation, env_index=key)
    return lambda observation, key: adapter.transform_obs(observation)


def end_episode(adapter: AdapterBase[Any], key: Any) -> None:
    """The episode kept under ``key`` ended: clear what the adapter held for it."""
    if isinstance(adapter, Adapter):
        adapter.reset(key)
    else:  # a custom adapter (its ``reset`` may take no argument)
        adapter.reset()


def adapt_one(predict: Callable[[Any], Any], adapter: AdapterBase[Any],
              key: Any = 0) -> Callable[[Any], Any]:
    """``predict`` (model space) as a function of env observations, for one episode ``key``."""
    observe, transform_action = _observe(adapter), adapter.transform_action
    return lambda observation: transform_action(_as_array(predict(observe(observation, key))))


def _lane(space: gs.Space[Any], batch: Any, k: int) -> Any:
    """Row ``k`` of a batch of ``space`` values (a ``Text`` batch is a tuple of strings)."""
    if isinstance(space, gs.Dict):
        return {key: _lane(sub, batch[key], k) for key, sub in space.spaces.items()}
    if isinstance(space, gs.Tuple):
        return tuple(_lane(sub, batch[i], k) for i, sub in enumerate(space.spaces))
    return batch[k]


def _stack(rows: list[Any]) -> Any:
    first = rows[0]
    if isinstance(first, Mapping):
        return {key: _stack([row[key] for row in rows]) for key in first}
    if isinstance(first, tuple):
        return tuple(_stack([row[i] for row in rows]) for i in range(len(first)))
    if isinstance(first, (str, list)) or first is None:
        return list(rows)
    return np.stack([np.asarray(row) for row in rows])


def adapt_batch(batch: Callable[..., Any], adapter: AdapterBase[Any],
                space: gs.Space[Any] | None) -> Callable[..., Any]:
    """A batch predictor over env observations: rows adapted one by one, predicted together.

    ``space`` (one env's observation space) splits the batch into rows. Row ``k``'s frame
    history is kept under its episode (``episodes[k]``) when one is given.
    """
    observe = _observe(adapter)

    def adapted(observations: Any, episodes: Any = None) -> Any:
        count = lane_count(observations)
        lanes = [pick(observations, k) if space is None else _lane(space, observations, k)
                 for k in range(count)]
        rows = episodes if episodes is not None else [None] * len(lanes)
        payloads = [observe(observation, id(episode) if episode is not None else k)
                    for k, (episode, observation) in enumerate(zip(rows, lanes, strict=True))]
        actions = _as_array(batch(_stack(payloads), episodes))
        return np.stack([np.asarray(adapter.transform_action(actions[k]))
                         for k in range(len(payloads))])
    return adapted
