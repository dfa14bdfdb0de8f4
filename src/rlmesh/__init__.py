"""rlmesh: serve reinforcement-learning environments over the network, drive them from anywhere.

Serve an env::

    import gymnasium as gym
    import rlmesh

    rlmesh.EnvServer(gym.make("CartPole-v1"), "127.0.0.1:5555").serve()

Drive it from another process or machine::

    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)

The public names load on first use (PEP 562): ``import rlmesh`` imports the exception tree
and the version only, so the server side runs inside older stacks than the client side needs
(``docs/old-gym.md``). ``rlmesh.X`` and ``from rlmesh import X`` work for every name in
:data:`__all__`, and ``dir(rlmesh)`` lists them.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from rlmesh.errors import (
    AsyncStepError,
    AuthenticationError,
    ConnectFailedError,
    ConnectionLostError,
    EncodeError,
    EndpointKindError,
    EnvBusyError,
    EnvClosedError,
    FleetError,
    InvalidActionError,
    MessageTooLargeError,
    NotAllowedError,
    ProtocolError,
    RemoteAttributeError,
    RemoteEnvError,
    RemoteModelError,
    ResetNeededError,
    RLMeshError,
    RLMeshTimeoutError,
    RLMeshWarning,
    SandboxError,
    SessionLostError,
    StepDeadlineError,
    TensorError,
    TransportError,
    UnsupportedSpaceError,
    VersionMismatchError,
)
from rlmesh.protocol import LIBRARY_BUILD as __build__
from rlmesh.protocol import LIBRARY_VERSION as __version__
from rlmesh.protocol import PROTOCOL_VERSION

if _typing.TYPE_CHECKING:  # what the lazy table below loads, as the type checker sees it
    from rlmesh import adapters, params, spaces, specs, tls, types
    from rlmesh import numpy as numpy
    from rlmesh import ray as ray
    from rlmesh.adapters.roles import NO_ADAPTER
    from rlmesh.authoring.describe import (
        DESCRIBE_METADATA_KEY,
        DESCRIBE_SCHEMA_VERSION,
        describe,
        describe_json,
    )
    from rlmesh.authoring.factory import EnvFactory
    from rlmesh.authoring.params import Param, ParamSpec, Vector
    from rlmesh.authoring.variants import Variant
    from rlmesh.backends.plain import PlainModel as Model
    from rlmesh.backends.plain import RemoteEnv, SandboxEnv
    from rlmesh.client.options import ConnectOptions
    from rlmesh.client.probe import probe
    from rlmesh.evaluation.episode_session import EpisodeSession, session
    from rlmesh.evaluation.evaluate import evaluate
    from rlmesh.evaluation.hooks import Hooks
    from rlmesh.evaluation.lifecycle import predict_seed
    from rlmesh.evaluation.recording import VideoRecorder
    from rlmesh.evaluation.result_set import Recorder
    from rlmesh.evaluation.results import EpisodeResult, RunResult
    from rlmesh.evaluation.run import run
    from rlmesh.evaluation.run_hooks import RunHooks, StepEvent
    from rlmesh.evaluation.session import Reader, Session
    from rlmesh.models.model import RANDOM_SAMPLE
    from rlmesh.models.remote import RemoteModel
    from rlmesh.sandbox.options import SandboxBuild, SandboxRuntime
    from rlmesh.sandbox.session import SandboxModel, SandboxVectorEnv
    from rlmesh.server.options import ServeOptions
    from rlmesh.server.server import EnvServer
    from rlmesh.tensor import Tensor
    from rlmesh.vector.endpoints import EndpointSet, MutableEndpoints, StaticEndpoints
    from rlmesh.vector.env import RemoteVectorEnv
    from rlmesh.vector.make import make_vec
    from rlmesh.viewer.view import View
    from rlmesh.wire.metadata import sanitize_metadata

_LAZY: dict[str, str] = {
    # name on rlmesh -> "module" (a submodule) or "module:attribute"; one line a name, so
    # that names added on different branches merge line by line.
    "adapters": "rlmesh.adapters",
    "NO_ADAPTER": "rlmesh.adapters.roles:NO_ADAPTER",
    "numpy": "rlmesh.numpy",
    "ray": "rlmesh.ray",
    "spaces": "rlmesh.spaces",
    "specs": "rlmesh.specs",
    "tls": "rlmesh.tls",
    "types": "rlmesh.types",
    "Model": "rlmesh.backends.plain:PlainModel",
    "RemoteEnv": "rlmesh.backends.plain:RemoteEnv",
    "ConnectOptions": "rlmesh.client.options:ConnectOptions",
    "probe": "rlmesh.client.probe:probe",
    "EpisodeSession": "rlmesh.evaluation.episode_session:EpisodeSession",
    "session": "rlmesh.evaluation.episode_session:session",
    "evaluate": "rlmesh.evaluation.evaluate:evaluate",
    "Hooks": "rlmesh.evaluation.hooks:Hooks",
    "VideoRecorder": "rlmesh.evaluation.recording:VideoRecorder",
    "Recorder": "rlmesh.evaluation.result_set:Recorder",
    "EpisodeResult": "rlmesh.evaluation.results:EpisodeResult",
    "RunResult": "rlmesh.evaluation.results:RunResult",
    "View": "rlmesh.viewer.view:View",
    "run": "rlmesh.evaluation.run:run",
    "RunHooks": "rlmesh.evaluation.run_hooks:RunHooks",
    "StepEvent": "rlmesh.evaluation.run_hooks:StepEvent",
    "Reader": "rlmesh.evaluation.session:Reader",
    "Session": "rlmesh.evaluation.session:Session",
    "RANDOM_SAMPLE": "rlmesh.models.model:RANDOM_SAMPLE",
    "RemoteModel": "rlmesh.models.remote:RemoteModel",
    "ServeOptions": "rlmesh.server.options:ServeOptions",
    "EnvServer": "rlmesh.server.server:EnvServer",
    "Tensor": "rlmesh.tensor:Tensor",
    "RemoteVectorEnv": "rlmesh.vector.env:RemoteVectorEnv",
    "make_vec": "rlmesh.vector.make:make_vec",
    "EndpointSet": "rlmesh.vector.endpoints:EndpointSet",
    "MutableEndpoints": "rlmesh.vector.endpoints:MutableEndpoints",
    "StaticEndpoints": "rlmesh.vector.endpoints:StaticEndpoints",
    "sanitize_metadata": "rlmesh.wire.metadata:sanitize_metadata",
    "DESCRIBE_METADATA_KEY": "rlmesh.authoring.describe:DESCRIBE_METADATA_KEY",
    "DESCRIBE_SCHEMA_VERSION": "rlmesh.authoring.describe:DESCRIBE_SCHEMA_VERSION",
    "EnvFactory": "rlmesh.authoring.factory:EnvFactory",
    "Param": "rlmesh.authoring.params:Param",
    "ParamSpec": "rlmesh.authoring.params:ParamSpec",
    "SandboxBuild": "rlmesh.sandbox.options:SandboxBuild",
    "SandboxEnv": "rlmesh.backends.plain:SandboxEnv",
    "SandboxModel": "rlmesh.sandbox.session:SandboxModel",
    "SandboxRuntime": "rlmesh.sandbox.options:SandboxRuntime",
    "SandboxVectorEnv": "rlmesh.sandbox.session:SandboxVectorEnv",
    "Variant": "rlmesh.authoring.variants:Variant",
    "Vector": "rlmesh.authoring.params:Vector",
    "describe": "rlmesh.authoring.describe:describe",
    "describe_json": "rlmesh.authoring.describe:describe_json",
    "params": "rlmesh.params",
    "predict_seed": "rlmesh.evaluation.lifecycle:predict_seed",
}

__all__ = [
    "DESCRIBE_METADATA_KEY",
    "DESCRIBE_SCHEMA_VERSION",
    "NO_ADAPTER",
    "PROTOCOL_VERSION",
    "RANDOM_SAMPLE",
    "AsyncStepError",
    "AuthenticationError",
    "ConnectFailedError",
    "ConnectOptions",
    "ConnectionLostError",
    "EncodeError",
    "EndpointKindError",
    "EndpointSet",
    "EnvBusyError",
    "EnvClosedError",
    "EnvFactory",
    "EnvServer",
    "EpisodeResult",
    "EpisodeSession",
    "FleetError",
    "Hooks",
    "InvalidActionError",
    "MessageTooLargeError",
    "Model",
    "MutableEndpoints",
    "NotAllowedError",
    "Param",
    "ParamSpec",
    "ProtocolError",
    "RLMeshError",
    "RLMeshTimeoutError",
    "RLMeshWarning",
    "Reader",
    "Recorder",
    "RemoteAttributeError",
    "RemoteEnv",
    "RemoteEnvError",
    "RemoteModel",
    "RemoteModelError",
    "RemoteVectorEnv",
    "ResetNeededError",
    "RunHooks",
    "RunResult",
    "SandboxBuild",
    "SandboxEnv",
    "SandboxError",
    "SandboxModel",
    "SandboxRuntime",
    "SandboxVectorEnv",
    "ServeOptions",
    "Session",
    "SessionLostError",
    "StaticEndpoints",
    "StepDeadlineError",
    "StepEvent",
    "Tensor",
    "TensorError",
    "TransportError",
    "UnsupportedSpaceError",
    "Variant",
    "Vector",
    "VersionMismatchError",
    "VideoRecorder",
    "View",
    "__build__",
    "__version__",
    "adapters",
    "describe",
    "describe_json",
    "evaluate",
    "make_vec",
    "params",
    "predict_seed",
    "probe",
    "run",
    "sanitize_metadata",
    "session",
    "spaces",
    "specs",
    "tls",
    "types",
]


def __getattr__(name: str) -> _typing.Any:
    """Load a public name on first use, then keep it on the module (PEP 562)."""
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, _, attribute = where.partition(":")
    module = _importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, loaded or not, besides the module's own attributes."""
    return sorted(set(globals()) | set(__all__))
