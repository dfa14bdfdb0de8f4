"""Regenerate ``surface.json`` from an installed copy of the reference rlmesh.

Run it with an interpreter that has the *reference* package installed (not this
project), for example in a throwaway virtual environment::

    python -m venv /tmp/ref && /tmp/ref/bin/pip install rlmesh==0.1.0rc5 numpy gymnasium
    /tmp/ref/bin/python tools/reference_api/extract_surface.py > tools/reference_api/surface.json

The rules mirror the measured gap list (``reference-gaps.md``): names are each
module's ``__all__``; signatures are the exported functions, the constructors of
exported classes that define their own ``__init__``/``__new__`` (Protocols and
``(*args, **kwargs)`` constructors excluded), and the public Python methods of
the classes listed in :data:`METHOD_CLASSES` (the classes both implementations
shared when the gap list was measured). Names the documentation shows for later
releases are appended with ``"since": "later"``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import types
from typing import Any

MODULES: tuple[str, ...] = (
    "rlmesh",
    "rlmesh.adapters",
    "rlmesh.jax",
    "rlmesh.numpy",
    "rlmesh.params",
    "rlmesh.spaces",
    "rlmesh.specs",
    "rlmesh.torch",
    "rlmesh.types",
)

#: Classes whose methods count as signatures (the gap list's "present classes").
METHOD_CLASSES: dict[str, tuple[str, ...]] = {
    "rlmesh": (
        "EnvServer",
        "EpisodeResult",
        "Model",
        "Recorder",
        "RemoteEnv",
        "RemoteModel",
        "RemoteVectorEnv",
        "RunResult",
        "ServeOptions",
    ),
    "rlmesh.jax": ("Model", "RemoteEnv", "RemoteVectorEnv"),
    "rlmesh.numpy": ("Model", "RemoteEnv", "RemoteVectorEnv"),
    "rlmesh.torch": ("Model", "RemoteEnv", "RemoteVectorEnv"),
    "rlmesh.spaces": (
        "Box",
        "Dict",
        "Discrete",
        "MultiBinary",
        "MultiDiscrete",
        "Space",
        "Text",
        "Tuple",
    ),
}

#: Top-level names of later releases (docs/api/platform.md, docs/user-guide/models/reference.md
#: and the later package ``__init__``); listed, never counted in the rc5 totals.
LATER_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "rlmesh": (
        ("BuildInfo", "class"),
        ("ENV_RESET_OPTIONS_KEY", "constant"),
        ("EnvironmentException", "class"),
        ("ProtocolException", "class"),
        ("RLMeshException", "class"),
        ("RunContext", "class"),
        ("TelemetryRow", "class"),
        ("build_info", "function"),
        ("current_workflow_edition", "function"),
        ("platform", "module"),
        ("predict_seed", "function"),
        ("trial_index", "function"),
    ),
}

#: Signatures listed but left out of the rc5 total, with the reason.
UNCOUNTED: dict[str, str] = {
    "rlmesh.adapters.tag": (
        "the function shares its name with the submodule rlmesh.adapters.tag; the gap "
        "list's snapshot (19 adapters signatures) resolved it as the module"
    ),
}

_KIND = {
    inspect.Parameter.POSITIONAL_ONLY: "positional-only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional-or-keyword",
    inspect.Parameter.KEYWORD_ONLY: "keyword-only",
    inspect.Parameter.VAR_POSITIONAL: "var-positional",
    inspect.Parameter.VAR_KEYWORD: "var-keyword",
}


def _params(sig: inspect.Signature, drop_first: bool = False) -> list[dict[str, Any]]:
    """Describe a signature's parameters as JSON-ready dicts.

    Args:
        sig: The signature.
        drop_first: Drop a leading positional parameter (``self``/``cls``).

    Returns:
        One dict per parameter: ``name``, ``kind`` and ``required``.
    """
    ps = list(sig.parameters.values())
    if drop_first and ps and ps[0].kind in (ps[0].POSITIONAL_ONLY, ps[0].POSITIONAL_OR_KEYWORD):
        ps = ps[1:]
    return [
        {
            "name": p.name,
            "kind": _KIND[p.kind],
            "required": p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD),
        }
        for p in ps
    ]


def _name_kind(obj: object) -> str:
    """Classify an exported object for the ``names`` list."""
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    if callable(obj) or type(obj).__module__ in ("typing", "types", "collections.abc"):
        return "type-alias"
    return "constant"


def _has_own_ctor(cls: type) -> bool:
    """Whether a class (or a non-object base) defines ``__init__`` or ``__new__``."""
    return any(
        "__init__" in vars(k) or "__new__" in vars(k) for k in cls.__mro__ if k is not object
    )


def _methods(cls: type, prefix: str) -> list[dict[str, Any]]:
    """List the public Python methods of ``cls`` (own and inherited)."""
    out: list[dict[str, Any]] = []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, staticmethod):
            fn, drop, kind = raw.__func__, False, "staticmethod"
        elif isinstance(raw, classmethod):
            fn, drop, kind = raw.__func__, True, "classmethod"
        elif inspect.isfunction(raw):
            fn, drop, kind = raw, True, "method"
        else:
            continue
        out.append(
            {
                "name": f"{prefix}.{name}",
                "kind": kind,
                "params": _params(inspect.signature(fn), drop),
            }
        )
    return out


def _entry(name: str, obj: object, kind: str) -> dict[str, Any] | None:
    """Describe an export's own signature: a function's, or a class's constructor.

    Args:
        name: The exported name.
        obj: The exported object.
        kind: Its kind from :func:`_name_kind`.

    Returns:
        The signature entry, or ``None`` when the export has none to count.
    """
    if kind == "function" and callable(obj):
        try:
            return {"name": name, "kind": "function", "params": _params(inspect.signature(obj))}
        except (TypeError, ValueError):
            return None
    if kind != "class" or not isinstance(obj, type) or not _has_own_ctor(obj):
        return None
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if list(sig.parameters) == ["args", "kwargs"]:
        return None  # a Protocol's or a pass-through constructor
    return {"name": name, "kind": "constructor", "params": _params(sig)}


def extract() -> dict[str, Any]:
    """Build the surface document from the installed reference package.

    Returns:
        The JSON-ready document.
    """
    modules: dict[str, Any] = {}
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        names: list[dict[str, Any]] = []
        sigs: list[dict[str, Any]] = []
        for name in sorted(mod.__all__):
            obj = getattr(mod, name)
            kind = _name_kind(obj)
            names.append({"name": name, "kind": kind})
            entry = _entry(name, obj, kind)
            if entry is not None:
                reason = UNCOUNTED.get(f"{mod_name}.{name}")
                if reason:
                    entry["counted"] = False
                    entry["note"] = reason
                sigs.append(entry)
            if kind == "class" and name in METHOD_CLASSES.get(mod_name, ()):
                assert isinstance(obj, type)
                sigs.extend(_methods(obj, name))
        for name, kind in LATER_NAMES.get(mod_name, ()):
            names.append({"name": name, "kind": kind, "since": "later"})
        modules[mod_name] = {"names": names, "signatures": sigs}
    version = str(getattr(importlib.import_module("rlmesh"), "__version__", "?"))
    return {
        "reference": {"package": "rlmesh", "version": version, "repository": "ArenaX-Labs/rlmesh"},
        "totals": {
            "names": sum(1 for m in modules.values() for n in m["names"] if "since" not in n),
            "signatures": sum(
                1 for m in modules.values() for s in m["signatures"] if s.get("counted", True)
            ),
        },
        "modules": modules,
    }


def main() -> int:
    """Print the surface document as JSON on stdout."""
    json.dump(extract(), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
