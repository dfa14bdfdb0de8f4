"""The rlmesh exception tree.

Every error rlmesh raises derives from :class:`RLMeshError`. Where a builtin exception
describes the same failure, the rlmesh class derives from it too, so code that already
catches ``ConnectionError``, ``TimeoutError`` or ``ValueError`` keeps working::

    RLMeshError
    ├── TransportError (ConnectionError)
    │   ├── ConnectFailedError          could not reach the endpoint
    │   └── ConnectionLostError         the peer went away mid-session
    │       └── SessionLostError        ... and the session could not be resumed
    ├── RLMeshTimeoutError (TimeoutError)
    │   └── StepDeadlineError           the server gave up on a stalled env call
    ├── ProtocolError (ValueError)      malformed or unexpected message
    │   ├── VersionMismatchError        peers speak different protocol versions
    │   ├── EndpointKindError           single-env vs vector endpoint mix-up
    │   └── MessageTooLargeError        a frame over the negotiated size limit
    ├── EncodeError (TypeError)         a value that cannot travel on the wire
    ├── TensorError (ValueError)        a tensor's buffer, shape or dtype does not fit
    ├── AuthenticationError (PermissionError)  missing or wrong token
    ├── NotAllowedError (PermissionError)      the server does not allow this request
    ├── EnvBusyError                    the endpoint's env instance is already in use
    ├── InvalidActionError (ValueError) action outside the action space
    ├── ResetNeededError                step before the first reset
    ├── EnvClosedError                  the client or the session is closed
    ├── AsyncStepError (RuntimeError)   send()/recv() out of order: recv with nothing sent,
    │                                   a lane already in flight, step() amid pending sends
    ├── UnsupportedSpaceError (TypeError)  a space or env API rlmesh cannot serve
    ├── RemoteAttributeError (AttributeError)  the served env has no such attribute
    ├── CompatError (ImportError)       a compatibility layer's package is missing here, or
    │                                   this Gymnasium is too old for the client side
    ├── SandboxError (RuntimeError)     a sandbox's stack could not be built or its server
    │                                   did not start (carries the installer's or server's log)
    ├── ParamError (ValueError)         an env's construction parameter failed validation
    │   ├── MissingParamError           a required parameter was not given
    │   └── UnknownParamError           a parameter nobody declared
    └── RemoteEnvError                  the served env raised; carries its traceback
        └── RemoteModelError            the served model raised
"""

from __future__ import annotations

__all__ = [
    "AdapterResolutionError",
    "AdapterSpecError",
    "AsyncStepError",
    "AuthenticationError",
    "CompatError",
    "ConnectFailedError",
    "ConnectionLostError",
    "EncodeError",
    "EndpointKindError",
    "EnvBusyError",
    "EnvClosedError",
    "FleetError",
    "InvalidActionError",
    "MessageTooLargeError",
    "MissingParamError",
    "NotAllowedError",
    "ParamError",
    "ProtocolError",
    "RLMeshError",
    "RLMeshTimeoutError",
    "RLMeshWarning",
    "RemoteAttributeError",
    "RemoteEnvError",
    "RemoteModelError",
    "ResetNeededError",
    "SandboxError",
    "SessionLostError",
    "StepDeadlineError",
    "TensorError",
    "TransportError",
    "UnknownParamError",
    "UnsupportedSpaceError",
    "VersionMismatchError",
]


class RLMeshError(Exception):
    """Base class of every error raised by rlmesh."""


class RLMeshWarning(UserWarning):
    """Base class of the warnings rlmesh emits (for example unencodable ``info`` values)."""


class TransportError(RLMeshError, ConnectionError):
    """The connection to the peer could not be made or was broken."""


class ConnectFailedError(TransportError):
    """The endpoint could not be reached (refused, unresolvable, or connect timed out)."""


class ConnectionLostError(TransportError):
    """The peer closed the connection or vanished during a session."""


class SessionLostError(ConnectionLostError):
    """The connection broke and the server no longer holds the session to resume.

    Raised when the resume window ran out, or the server ended or never had the session.
    """


class RLMeshTimeoutError(RLMeshError, TimeoutError):
    """A request did not complete within its timeout.

    The connection is closed afterwards, since a late reply could otherwise be taken for
    the answer to a later request. With a resume window, a call whose time ran out while
    its broken connection was being resumed leaves the session parked on the server: the
    next call within the window resumes it.
    """


class StepDeadlineError(RLMeshTimeoutError):
    """The served env's step, reset, render or attribute access ran past ``step_deadline``.

    The server answered in time and closed the session; the env call that stalled is left
    to finish (or not) on its own, and its env is never handed to another session.
    """


class ProtocolError(RLMeshError, ValueError):
    """A peer sent a message that does not follow the rlmesh protocol."""


class VersionMismatchError(ProtocolError):
    """Client and server speak incompatible protocol versions."""


class EndpointKindError(ProtocolError):
    """The endpoint serves another kind of env than the client expects.

    ``RemoteEnv`` needs a single-env endpoint and ``RemoteVectorEnv(address)`` a vector one;
    the message names the class to use instead.
    """


class MessageTooLargeError(ProtocolError):
    """A frame is larger than the receiver's ``max_message_bytes`` limit."""


class EncodeError(RLMeshError, TypeError):
    """A value cannot be encoded for the wire (rlmesh never falls back to pickle)."""


class TensorError(RLMeshError, ValueError):
    """A tensor cannot be made or converted: wrong buffer length, shape or dtype."""


class UnsupportedSpaceError(RLMeshError, TypeError):
    """A space type has no wire schema, or the env comes from an API rlmesh does not serve.

    The message names the object (its fully qualified class) and the way forward: the
    supported spaces, a single-agent view of a PettingZoo multi-agent env, or Shimmy's
    wrapper around an env from the legacy ``gym`` package.
    """


class AuthenticationError(RLMeshError, PermissionError):
    """The token check failed: missing or wrong on either side.

    rlmesh authenticates with a challenge-response over the shared token, which never
    crosses the wire; both sides prove they know it.
    """


class NotAllowedError(RLMeshError, PermissionError):
    """The server does not allow this request (for instance a remote shutdown)."""


class EnvBusyError(RLMeshError):
    """The endpoint serves a single env instance that another session is using.

    Serve a factory (a zero-argument callable or a registered env id) to give every
    session its own env.
    """


class InvalidActionError(RLMeshError, ValueError):
    """The action is not a member of the action space; the env never saw it."""


class ResetNeededError(RLMeshError):
    """``step`` (or ``render``) was called before the first ``reset``."""


class EnvClosedError(RLMeshError):
    """The env or its session has been closed."""


class AsyncStepError(RLMeshError, RuntimeError):
    """Async stepping's calls came out of order.

    ``recv()`` with nothing sent (or fewer lanes in flight than ``batch_size``), ``send()``
    to a lane already in flight, or a synchronous call (``step``, ``reset``...) while lanes
    sent with ``send()`` have not been received.
    """


class RemoteAttributeError(RLMeshError, AttributeError):
    """The served env has no attribute of that name (remote attribute access).

    An ``AttributeError``, so ``hasattr(remote_env, name)`` is ``False`` and
    ``getattr(remote_env, name, default)`` returns the default, as for a local env.
    """


class RemoteEnvError(RLMeshError):
    """The served env raised an exception while handling a request.

    Attributes:
        remote_type: Qualified name of the exception class raised on the server.
        remote_message: ``str()`` of the remote exception.
        remote_traceback: The formatted server-side traceback.
    """

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = "") -> None:
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        super().__init__(f"{remote_type}: {remote_message}")

    def __str__(self) -> str:
        text = f"{self.remote_type}: {self.remote_message}"
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text


class RemoteModelError(RemoteEnvError):
    """The served model raised while predicting (same attributes as RemoteEnvError)."""


class CompatError(RLMeshError, ImportError):
    """A package that a compatibility layer needs is missing or too old in this environment.

    Raised by ``rlmesh serve --compat gym`` (and ``EnvServer(compat="gym")``) where the old
    ``gym`` package is not installed, and by rlmesh's client side under a Gymnasium older than
    it supports. The message names the package and version needed (``docs/old-gym.md``).
    """


class SandboxError(RLMeshError, RuntimeError):
    """A sandbox could not be built or started.

    The message carries what explains it: the installer's own error for a requirement that
    cannot be resolved, or the tail of the server's log for a server that exited or never
    answered.
    """


class AdapterSpecError(RLMeshError, ValueError):
    """An adapter declaration (env tags, a model spec, their JSON) is malformed."""


class AdapterResolutionError(RLMeshError, ValueError):
    """Env tags or a model spec do not fit the spaces (or each other) they are checked against."""


class ParamError(RLMeshError, ValueError):
    """A construction parameter failed its type, choices or range check.

    Raised before the env is built (``EnvFactory.make``, ``EnvFactory.serve``,
    ``python -m rlmesh.serve``), so a bad binding costs nothing.
    """


class MissingParamError(ParamError):
    """A required construction parameter was not given.

    Attributes:
        name: The parameter's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"missing required parameter {name!r}")


class UnknownParamError(ParamError):
    """Parameters that are neither declared nor keywords of ``make()``.

    Attributes:
        names: The unknown names, sorted.
    """

    def __init__(self, names: str | list[str] | tuple[str, ...],
                 message: str | None = None) -> None:
        self.names = sorted([names] if isinstance(names, str) else names)
        super().__init__(message or "unknown parameter" + ("s " if len(self.names) > 1 else " ")
                         + ", ".join(map(repr, self.names)))


class FleetError(RLMeshError, RuntimeError):
    """A fleet of servers placed by a cluster manager could not be started, found or used.

    Raised by :mod:`rlmesh.ray` when the cluster cannot place the servers (too few resources),
    a named fleet does not exist, or a server's actor failed while being built.
    """
