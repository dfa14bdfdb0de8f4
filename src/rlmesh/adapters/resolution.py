"""Resolution: an env's tags and spaces against a model's spec, once, before the first step.

:func:`resolve` indexes what the env offers by role (:mod:`.env_index`), resolves every leaf
of the model's input tree against it (cameras in :mod:`.images`, numbers in :mod:`.numeric`,
texts and custom inputs here) and the model's action against the env's layout
(:mod:`.action_plan`). Whatever cannot be bridged raises
:class:`~rlmesh.errors.AdapterResolutionError` naming the leaf; what can is compiled into an
:class:`~rlmesh.adapters.Adapter` whose per-step work is a fixed chain of array steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gymnasium import spaces

from rlmesh.adapters.action_plan import plan_action
from rlmesh.adapters.adapter import OMIT, Adapter, Plan, Stack
from rlmesh.adapters.advisory import Advisory
from rlmesh.adapters.env_index import EnvIndex, index_env, read_path
from rlmesh.adapters.hostcode import load_callable
from rlmesh.adapters.images import plan_image
from rlmesh.adapters.join import check_action
from rlmesh.adapters.model_leaves import Concat, Custom, CustomEncoding, Image, State, Text
from rlmesh.adapters.model_spec import ModelSpec
from rlmesh.adapters.numeric import plan_numeric
from rlmesh.adapters.roles import INSTRUCTION
from rlmesh.adapters.tags import EnvTags
from rlmesh.errors import AdapterResolutionError
from rlmesh.spacetypes.convert import to_gymnasium_space

__all__ = ["resolve", "resolve_from_contract", "role_reader"]

LeafFn = Callable[[Any, int], Any]


class _Resolver:
    """One resolution: the env index, the options, and what it collects."""

    def __init__(self, index: EnvIndex, trust: bool, check_inverse: bool) -> None:
        self.index, self.trust, self.check_inverse = index, trust, check_inverse
        self.lines: list[str] = []
        self.advisories: list[Advisory] = []
        self.customs: dict[str, Callable[[Any], Any]] = {}
        self.stacks: dict[str, Stack] = {}
        self.shims: dict[str, Any] = {}
        self.plan: Plan | None = None

    def node(self, node: Any, key: str) -> LeafFn:
        if isinstance(node, Mapping):
            items = [(k, self.node(child, f"{key}.{k}" if key else k)) for k, child in
                     node.items()]

            def build_dict(obs: Any, lane: int) -> dict[str, Any]:
                out = {}
                for name, fn in items:
                    value = fn(obs, lane)
                    if value is not OMIT:
                        out[name] = value
                return out
            return build_dict
        if isinstance(node, tuple):
            fns = [self.node(child, f"{key}[{i}]") for i, child in enumerate(node)]
            return lambda obs, lane: tuple(
                None if (v := fn(obs, lane)) is OMIT else v for fn in fns)
        return self.leaf(node, key or "<payload>")

    def leaf(self, leaf: Any, key: str) -> LeafFn:
        if isinstance(leaf, Image):
            return self.image(leaf, key)
        if isinstance(leaf, (State, Concat)):
            plan, notes = plan_numeric(leaf, self.index, key, trust=self.trust,
                                       check_inverse=self.check_inverse)
            self.advisories += notes
            self.lines.append(f"  \"{key}\" <- {plan.text}")
            for part in leaf.parts:
                if isinstance(part.encoding, CustomEncoding):
                    self.shims[key] = part.encoding
            return lambda obs, lane: plan(obs)
        if isinstance(leaf, Text):
            return self.text(leaf, key)
        assert isinstance(leaf, Custom)
        target = leaf.transform if leaf.transform is not None else leaf.entrypoint
        fn = load_callable(target, trust=self.trust, where=key)
        self.customs[key] = fn
        self.lines.append(f"  \"{key}\" <- custom {leaf.entrypoint or _name(fn)}")
        return lambda obs, lane: fn(obs)

    def image(self, leaf: Image, key: str) -> LeafFn:
        cameras = self.index.cameras
        camera = cameras.get(leaf.role)
        # The lone-camera fallback serves a required input only: an optional one whose role
        # the env lacks is zero-filled, never bound to an unrelated camera.
        if camera is None and not leaf.optional and len(cameras) == 1:
            camera = next(iter(cameras.values()))
            self.advisories.append(Advisory(
                f"{key}: the env has no {leaf.role!r}; its only camera {camera.role!r} "
                f"({camera.path}) is used", level="info", path=key))
        if camera is None and not leaf.optional:
            raise AdapterResolutionError(
                f"{key}: the env has no camera with role {leaf.role!r} (it has: "
                f"{', '.join(sorted(cameras)) or 'none'}); mark it optional=True for a blank "
                "frame")
        pipe = plan_image(leaf, camera, key)
        self.advisories += list(pipe.advisories)
        source = "blank" if camera is None else camera.path
        self.lines.append(f"  \"{key}\" <- {source}: {', '.join(pipe.steps) or 'as is'}")
        stack = None
        if leaf.stack > 1 or leaf.offsets is not None:
            offsets = leaf.offsets or tuple(range(1 - leaf.stack, 1))
            stack = self.stacks[key] = Stack(offsets, leaf.stack_pad, pipe.pad_frame)
            self.lines[-1] += f", stack {list(offsets)}"
        path = None if camera is None else self.index.camera_paths[camera.role]

        def frame(obs: Any, lane: int) -> Any:
            out = pipe(None if path is None else _read_image(obs, path, key))
            return out if stack is None else stack.push(out, lane)
        return frame

    def text(self, leaf: Text, key: str) -> LeafFn:
        texts = self.index.texts
        feature = texts.get(leaf.role)
        if feature is None and len(texts) == 1:
            feature = next(iter(texts.values()))
        if feature is None and leaf.fill is None and leaf.role != INSTRUCTION:
            self.advisories.append(Advisory(f"{key}: the env has no {leaf.role!r}; the slot "
                                            "is left out", level="caution", path=key))
        self.lines.append(f"  \"{key}\" <- {feature.label if feature else 'no env text'}"
                          + (f" (fill {leaf.fill!r})" if leaf.fill is not None else ""))
        path = None if feature is None else feature.path
        as_list, fill, role = leaf.container == "list", leaf.fill, leaf.role

        def read(obs: Any, lane: int) -> Any:
            override = self.plan.instruction if self.plan is not None else None
            value: Any = override if role == INSTRUCTION and override is not None else None
            if value is None and path is not None:
                try:
                    value = read_path(obs, path)
                except (KeyError, IndexError, TypeError):
                    value = None
            if value is None:
                value = fill
            if value is None:
                return OMIT
            return [str(value)] if as_list else str(value)
        return read


def _read_image(obs: Any, path: Any, key: str) -> Any:
    try:
        return read_path(obs, path)
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{key}: the observation has no image at {path!r}") from exc


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def resolve(env_tags: EnvTags, observation_space: spaces.Space[Any],
            action_space: spaces.Space[Any], model_spec: ModelSpec, *,
            trust_entrypoints: bool = False, check_inverse: bool = True) -> Adapter:
    """Build the adapter between an env (its tags and spaces) and a model's spec.

    Args:
        env_tags: The env's tags.
        observation_space: The env's (single) observation space.
        action_space: The env's (single) action space.
        model_spec: What the model ingests and emits.
        trust_entrypoints: Import the ``module:callable`` entrypoints the spec names.
        check_inverse: Round-trip each CustomEncoding's two arms on a probe rotation.

    Returns:
        The adapter; :meth:`~rlmesh.adapters.Adapter.explain` says what it does.

    Raises:
        AdapterResolutionError: If a model input or action component cannot be bridged.
        TypeError: If the arguments are not tags, spaces and a spec.
    """
    if not isinstance(env_tags, EnvTags):
        raise TypeError(f"resolve() needs EnvTags, not {type(env_tags).__qualname__}")
    if not isinstance(model_spec, ModelSpec):
        raise TypeError(f"resolve() needs a ModelSpec, not {type(model_spec).__qualname__}")
    check_action(env_tags.action, action_space)
    resolver = _Resolver(index_env(env_tags.observation, observation_space),
                         trust_entrypoints, check_inverse)
    resolver.lines.append("observation:")
    build = resolver.node(model_spec.input, "")
    action, notes = plan_action(env_tags.action, action_space, model_spec.output,
                                trust=trust_entrypoints)
    lines = [*resolver.lines, "action:", *action.lines]
    if resolver.shims:
        lines.append("host-side encodings:")
        lines += [f"  \"{key}\" {enc.base} -> {enc.name}" for key, enc in resolver.shims.items()]
    plan = Plan(build, action, lines, resolver.advisories + notes, model_spec, env_tags)
    resolver.plan = plan
    return Adapter(plan, resolver.customs, resolver.stacks, resolver.shims)


def resolve_from_contract(contract: Any, model_spec: ModelSpec, *,
                          trust_entrypoints: bool = False, check_inverse: bool = True) -> Adapter:
    """:func:`resolve` against an endpoint's contract (``env.env_contract``).

    The tags come from the contract's metadata (``EnvServer(tags=...)`` publishes them), the
    spaces from the contract (a vector env's are one sub-env's).

    Raises:
        AdapterResolutionError: If the env publishes no tags, or resolution fails.
    """
    tags = EnvTags.from_metadata(getattr(contract, "metadata", None) or {})
    if tags is None:
        raise AdapterResolutionError(
            "the env publishes no adapter tags; serve it with EnvServer(env, tags=EnvTags(...)) "
            "or rlmesh.adapters.tag(env, tags)")
    return resolve(tags, to_gymnasium_space(contract.observation_space),
                   to_gymnasium_space(contract.action_space), model_spec,
                   trust_entrypoints=trust_entrypoints, check_inverse=check_inverse)


def role_reader(env_tags: EnvTags, observation_space: spaces.Space[Any],
                items: tuple[Any, ...]) -> Callable[[Any], dict[Any, Any]]:
    """A reader of roles (or model leaves) off raw observations: ``obs -> {role: value}``.

    A role string reads the env's feature as it is (an image, a numeric vector as float32, a
    text); a model leaf (``Image(...)``, ``State(...)``...) reads it as that leaf would give it
    to a model.

    Raises:
        AdapterResolutionError: If an item names a role the env does not tag, or a leaf cannot
            be resolved.
    """
    index = index_env(env_tags.observation, observation_space)
    resolver = _Resolver(index, False, True)
    fns = []
    for item in items:
        leaf = item
        if isinstance(item, str):
            if item in index.cameras:
                leaf = Image(item)
            elif item in index.texts:
                leaf = Text(item)
            elif item in index.states:
                leaf = State(item)
            else:
                raise AdapterResolutionError(f"the env tags no role {item!r}")
        fns.append((item if isinstance(item, str) else leaf.role,
                    resolver.leaf(leaf, str(item if isinstance(item, str) else leaf.role))))

    def read(observation: Any) -> dict[Any, Any]:
        values = {}
        for item, fn in fns:
            value = fn(observation, 0)
            if value is not OMIT:
                values[item] = value
        return values
    return read
