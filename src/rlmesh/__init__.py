"""rlmesh: serve reinforcement-learning environments over the network, drive them from anywhere.

Serve an env::

    import gymnasium as gym
    import rlmesh

    rlmesh.EnvServer(gym.make("CartPole-v1"), "127.0.0.1:5555").serve()

Drive it from another process or machine::

    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from rlmesh import numpy as numpy  # ``import rlmesh`` is enough for ``rlmesh.numpy.RemoteEnv``
from rlmesh import params, spaces, specs, tls, types
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
from rlmesh.errors import (
    AuthenticationError,
    ConnectFailedError,
    ConnectionLostError,
    EncodeError,
    EndpointKindError,
    EnvBusyError,
    EnvClosedError,
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
from rlmesh.protocol import LIBRARY_BUILD as __build__
from rlmesh.protocol import LIBRARY_VERSION as __version__
from rlmesh.protocol import PROTOCOL_VERSION
from rlmesh.sandbox.options import SandboxBuild, SandboxRuntime
from rlmesh.sandbox.session import SandboxModel, SandboxVectorEnv
from rlmesh.server.options import ServeOptions
from rlmesh.server.server import EnvServer
from rlmesh.tensor import Tensor
from rlmesh.vector.env import RemoteVectorEnv
from rlmesh.vector.make import make_vec
from rlmesh.wire.metadata import sanitize_metadata

__all__ = [
    "DESCRIBE_METADATA_KEY",
    "DESCRIBE_SCHEMA_VERSION",
    "PROTOCOL_VERSION",
    "RANDOM_SAMPLE",
    "AuthenticationError",
    "ConnectFailedError",
    "ConnectOptions",
    "ConnectionLostError",
    "EncodeError",
    "EndpointKindError",
    "EnvBusyError",
    "EnvClosedError",
    "EnvFactory",
    "EnvServer",
    "EpisodeResult",
    "EpisodeSession",
    "Hooks",
    "InvalidActionError",
    "MessageTooLargeError",
    "Model",
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
    "__build__",
    "__version__",
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
