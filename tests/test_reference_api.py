"""The reference-API coverage measure (tools/reference_api) and its floor.

The measure counts the reference rlmesh's (0.1.0rc5) public names present here and
its signatures that are call-compatible. These tests pin the surface totals, keep a
floor under what is present today (a change that loses a reference name, or turns a
compatible signature incompatible, fails here; raise the floor as coverage grows),
and check that the report is deterministic.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "reference_api" / "measure.py"

#: The reference's rc5 totals (the gap list's denominators).
NAMES_TOTAL = 182
SIGNATURES_TOTAL = 234
#: Names present when the gap list was measured (with torch installed).
GAP_LIST_NAMES_PRESENT = 32

#: Modules whose import needs an optional framework, and that framework.
OPTIONAL_MODULES = {"rlmesh.torch": "torch", "rlmesh.jax": "jax"}

#: Reference names present today, per module (the floor; add to it, never remove).
NAMES_FLOOR: dict[str, set[str]] = {
    "rlmesh": {
        "DESCRIBE_METADATA_KEY", "DESCRIBE_SCHEMA_VERSION", "EnvFactory", "EnvServer",
        "EpisodeResult", "Model", "NO_ADAPTER", "Param", "ParamSpec", "RANDOM_SAMPLE", "Reader",
        "Recorder", "RemoteEnv", "RemoteModel", "RemoteVectorEnv", "RunHooks", "RunResult",
        "SandboxBuild", "SandboxEnv", "SandboxModel", "SandboxRuntime", "SandboxVectorEnv",
        "ServeOptions", "Session", "StepEvent", "Tensor", "Variant", "Vector", "View", "__build__",
        "__version__", "adapters", "describe", "describe_json", "params", "run",
        "sanitize_metadata", "session", "spaces", "specs", "types",
    },
    "rlmesh.adapters": {
        "ACTION_DELTA_POS", "ACTION_DELTA_POS_2", "ACTION_DELTA_ROT", "ACTION_DELTA_ROT_2",
        "ACTION_GRIPPER", "ACTION_GRIPPER_2", "ACTION_JOINT_POS", "ACTION_JOINT_VEL", "Action",
        "Actuator", "Adapter", "AdapterBase", "AdapterResolutionError", "Advisory", "Concat",
        "ConcatPart", "Custom", "CustomEncoding", "EEF_POS", "EEF_POS_2", "EEF_ROT", "EEF_ROT_2",
        "ENV_METADATA_KEY", "EnvTags", "Field", "FitMode", "GRIPPER_POS", "GRIPPER_POS_2",
        "IMAGE_PRIMARY", "IMAGE_SECONDARY", "IMAGE_WRIST", "INSTRUCTION", "Image", "ImageLayout",
        "ImageTag", "InputNode", "JOINT_POS", "JOINT_VEL", "MODEL_METADATA_KEY", "ModelLeaf",
        "ModelSpec", "ObsLeaf", "ObsNode", "ObsTransform", "ObservationRoles", "ROTATION_DIMS",
        "Resample", "RotationEncoding", "RotationTransform", "Split", "State", "StateTag", "Text",
        "TextTag", "resolve", "resolve_from_contract", "tag",
    },
    "rlmesh.jax": {
        "EnvFactory", "JaxValue", "Model", "RemoteEnv", "RemoteModel", "RemoteVectorEnv",
        "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
        "SandboxVectorEnv", "asarray", "ensure_available", "from_array", "space_from_spec",
    },
    "rlmesh.numpy": {
        "EnvFactory", "Model", "NumpyValue", "RemoteEnv", "RemoteModel", "RemoteVectorEnv",
        "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
        "SandboxVectorEnv", "asarray", "ensure_available", "from_array", "space_from_spec",
    },
    "rlmesh.params": {
        "MissingParamError", "PARAM_METADATA_KEY", "Param", "ParamError", "ParamSpec",
        "UnknownParamError", "Vector",
    },
    "rlmesh.spaces": {
        "Box", "Dict", "Discrete", "MultiBinary", "MultiDiscrete", "Space", "SpaceSpec", "Text",
        "Tuple", "from_gymnasium_space", "space_from_spec", "to_gymnasium_space",
    },
    "rlmesh.specs": {
        "EnvContract", "SpaceSpec",
    },
    "rlmesh.torch": {
        "EnvFactory", "Model", "RemoteEnv", "RemoteModel", "RemoteVectorEnv", "SandboxBuild",
        "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime", "SandboxVectorEnv",
        "TorchValue", "as_tensor", "ensure_available", "from_tensor", "space_from_spec",
    },
    "rlmesh.types": {
        "EnvLike", "EnvTarget", "HasAddress", "HasEnvContract", "InfoDict", "LocalEnvTarget",
        "Metadata", "PrimitiveValue", "SpaceLike", "SpecArg", "SupportsMake", "SupportsResetStep",
        "Value", "VectorEnvLike", "ViewArg",
    },
}


#: Signatures call-compatible today, per module (the floor; names-differ counts apart).
COMPATIBLE_FLOOR: dict[str, set[str]] = {
    "rlmesh": {
        "EnvServer", "EnvServer.serve", "EnvServer.shutdown", "EnvServer.start", "EnvServer.wait",
        "EpisodeResult", "Model", "Model.close", "Model.describe", "Model.load", "Model.predict",
        "Model.predict_batch", "Model.predict_chunk", "Model.predict_chunk_batch", "Model.reset",
        "Model.run", "Model.serve", "Model.session", "Param", "ParamSpec", "Reader", "Recorder",
        "Recorder.add", "Recorder.capture", "Recorder.close", "Recorder.export",
        "Recorder.to_dict", "RemoteEnv", "RemoteEnv.close", "RemoteEnv.render", "RemoteEnv.reset",
        "RemoteEnv.shutdown", "RemoteEnv.step", "RemoteModel", "RemoteModel.session",
        "RemoteVectorEnv", "RemoteVectorEnv.close", "RemoteVectorEnv.render",
        "RemoteVectorEnv.reset", "RemoteVectorEnv.shutdown", "RemoteVectorEnv.step", "RunResult",
        "SandboxBuild", "SandboxEnv", "SandboxModel", "SandboxRuntime", "SandboxVectorEnv",
        "ServeOptions", "StepEvent", "Tensor", "Variant", "Vector", "View", "describe",
        "describe_json", "run", "sanitize_metadata", "session",
    },
    "rlmesh.adapters": {
        "Action", "Actuator", "Adapter", "Concat", "Custom", "CustomEncoding", "EnvTags", "Field",
        "Image", "ImageTag", "ModelSpec", "ObservationRoles", "Split", "State", "StateTag", "Text",
        "TextTag", "resolve", "resolve_from_contract",
    },
    "rlmesh.jax": {
        "Model", "Model.close", "Model.describe", "Model.load", "Model.predict",
        "Model.predict_batch", "Model.predict_chunk", "Model.predict_chunk_batch", "Model.reset",
        "Model.run", "Model.serve", "Model.session", "RemoteEnv", "RemoteEnv.close",
        "RemoteEnv.render", "RemoteEnv.reset", "RemoteEnv.shutdown", "RemoteEnv.step",
        "RemoteModel", "RemoteVectorEnv", "RemoteVectorEnv.close", "RemoteVectorEnv.render",
        "RemoteVectorEnv.reset", "RemoteVectorEnv.shutdown", "RemoteVectorEnv.step",
        "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
        "SandboxVectorEnv", "asarray", "ensure_available", "from_array", "space_from_spec",
    },
    "rlmesh.numpy": {
        "Model", "Model.close", "Model.describe", "Model.load", "Model.predict",
        "Model.predict_batch", "Model.predict_chunk", "Model.predict_chunk_batch", "Model.reset",
        "Model.run", "Model.serve", "Model.session", "RemoteEnv", "RemoteEnv.close",
        "RemoteEnv.render", "RemoteEnv.reset", "RemoteEnv.shutdown", "RemoteEnv.step",
        "RemoteModel", "RemoteVectorEnv", "RemoteVectorEnv.close", "RemoteVectorEnv.render",
        "RemoteVectorEnv.reset", "RemoteVectorEnv.shutdown", "RemoteVectorEnv.step",
        "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
        "SandboxVectorEnv", "asarray", "ensure_available", "from_array", "space_from_spec",
    },
    "rlmesh.params": {
        "MissingParamError", "Param", "ParamSpec", "UnknownParamError", "Vector",
    },
    "rlmesh.spaces": {
        "Box", "Box.contains", "Box.sample", "Box.seed", "Box.to_gymnasium_space", "Dict",
        "Dict.contains", "Dict.items", "Dict.keys", "Dict.sample", "Dict.seed",
        "Dict.to_gymnasium_space", "Dict.values", "Discrete", "Discrete.contains",
        "Discrete.sample", "Discrete.seed", "Discrete.to_gymnasium_space", "MultiBinary",
        "MultiBinary.contains", "MultiBinary.sample", "MultiBinary.seed",
        "MultiBinary.to_gymnasium_space", "MultiDiscrete", "MultiDiscrete.contains",
        "MultiDiscrete.sample", "MultiDiscrete.seed", "MultiDiscrete.to_gymnasium_space",
        "Space.sample", "Space.seed", "Text", "Text.contains", "Text.sample", "Text.seed",
        "Text.to_gymnasium_space", "Tuple", "Tuple.contains", "Tuple.sample", "Tuple.seed",
        "Tuple.to_gymnasium_space", "from_gymnasium_space", "space_from_spec",
        "to_gymnasium_space",
    },
    "rlmesh.specs": set(),
    "rlmesh.torch": {
        "Model", "Model.close", "Model.describe", "Model.load", "Model.predict",
        "Model.predict_batch", "Model.predict_chunk", "Model.predict_chunk_batch", "Model.reset",
        "Model.run", "Model.serve", "Model.session", "RemoteEnv", "RemoteEnv.close",
        "RemoteEnv.render", "RemoteEnv.reset", "RemoteEnv.shutdown", "RemoteEnv.step",
        "RemoteModel", "RemoteVectorEnv", "RemoteVectorEnv.close", "RemoteVectorEnv.render",
        "RemoteVectorEnv.reset", "RemoteVectorEnv.shutdown", "RemoteVectorEnv.step",
        "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
        "SandboxVectorEnv", "as_tensor", "ensure_available", "from_tensor", "space_from_spec",
    },
    "rlmesh.types": set(),
}

#: Signatures that bind at least positionally today (compatible or names-differ).
NAMES_DIFFER_FLOOR: dict[str, set[str]] = {
    "rlmesh": set(),
    "rlmesh.adapters": set(),
    "rlmesh.jax": set(),
    "rlmesh.numpy": set(),
    "rlmesh.params": set(),
    "rlmesh.spaces": {
        "Space", "Space.contains",
    },
    "rlmesh.specs": set(),
    "rlmesh.torch": set(),
    "rlmesh.types": set(),
}


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference_api_measure", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _load_tool()


@pytest.fixture(scope="module")
def summary(tool: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = tool.summary(tool.measure())
    return result


def _available(module: str) -> bool:
    framework = OPTIONAL_MODULES.get(module)
    return framework is None or importlib.util.find_spec(framework) is not None


def test_surface_lists_the_rc5_totals(tool: ModuleType) -> None:
    surface = tool.load_surface()
    assert surface["reference"]["version"] == "0.1.0rc5"
    assert tool.surface_totals(surface) == (NAMES_TOTAL, SIGNATURES_TOTAL)
    assert (surface["totals"]["names"], surface["totals"]["signatures"]) == (
        NAMES_TOTAL,
        SIGNATURES_TOTAL,
    )
    kinds = {"positional-only", "positional-or-keyword", "keyword-only"}
    kinds |= {"var-positional", "var-keyword"}
    for module in surface["modules"].values():
        names = [n["name"] for n in module["names"]]
        assert len(names) == len(set(names))
        for sig in module["signatures"]:
            assert {p["kind"] for p in sig["params"]} <= kinds, sig["name"]


def test_measure_counts_against_the_totals(summary: dict[str, Any]) -> None:
    assert summary["names_total"] == NAMES_TOTAL
    assert summary["signatures_total"] == SIGNATURES_TOTAL
    assert sum(summary["signatures"].values()) == SIGNATURES_TOTAL


def test_no_reference_name_is_lost(summary: dict[str, Any]) -> None:
    floor = 0
    for module, names in NAMES_FLOOR.items():
        if not _available(module):
            continue  # its framework is not installed here: the module cannot import
        floor += len(names)
        present = set(summary["modules"][module]["present"])
        assert names <= present, f"{module} lost {sorted(names - present)}"
    assert summary["names_present"] >= floor
    if all(_available(m) for m in OPTIONAL_MODULES):
        assert summary["names_present"] >= GAP_LIST_NAMES_PRESENT


def test_no_compatible_signature_is_lost(summary: dict[str, Any]) -> None:
    for module, names in COMPATIBLE_FLOOR.items():
        if not _available(module):
            continue
        results = summary["modules"][module]["signature_results"]
        lost = sorted(n for n in names if results[n]["status"] != "compatible")
        assert not lost, f"{module}: no longer call-compatible: {lost}"
    for module, names in NAMES_DIFFER_FLOOR.items():
        results = summary["modules"][module]["signature_results"]
        lost = sorted(
            n for n in names if results[n]["status"] not in ("compatible", "names-differ")
        )
        assert not lost, f"{module}: no longer binds positionally: {lost}"


def test_measure_is_stable(tool: ModuleType, summary: dict[str, Any]) -> None:
    assert tool.summary(tool.measure()) == summary
    runs = [
        subprocess.run(
            [sys.executable, str(TOOL), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for args in (["--json"], ["--json"], ["--missing", "--details"])
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert runs[0].stdout == runs[1].stdout
    document = json.loads(runs[0].stdout)
    assert document["names_present"] == summary["names_present"]
    assert document["signatures"] == summary["signatures"]
    assert "| **total** |" in runs[2].stdout
    assert "Missing, by module" in runs[2].stdout
