"""Protocol constants: version, op codes, status codes and error codes.

The normative description lives in ``docs/protocol.md``; this module only names its numbers
and maps error codes to exception classes.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any, Final

from rlmesh import errors

__all__ = [
    "CAP_ATTRIBUTES", "CLIENT_NAME", "DEFAULT_MAX_MESSAGE_BYTES", "E_AUTH", "E_BUSY", "E_DEADLINE",
    "E_ENCODE", "E_ENV", "E_FULL", "E_INTERNAL", "E_INVALID_ACTION", "E_MODEL", "E_NOT_ALLOWED",
    "E_NO_ATTRIBUTE", "E_PROTOCOL", "E_RESET_NEEDED", "E_RESUME", "E_SHUTTING_DOWN", "E_TOO_LARGE",
    "E_VERSION", "LIBRARY_BUILD", "LIBRARY_VERSION", "OP_AUTH", "OP_CALL", "OP_CLOSE",
    "OP_GET_ATTR", "OP_HELLO",
    "OP_NAMES", "OP_PING", "OP_PREDICT", "OP_PREDICT_BATCH", "OP_REGION", "OP_RENDER",
    "OP_RESET",
    "OP_SET_ATTR", "OP_SHUTDOWN", "OP_STEP", "PROTOCOL_VERSION", "STATUS_ERROR", "STATUS_OK",
    "error_from_map", "error_map", "server_info",
]



def _library_version() -> str:
    """This package's version, as installed (``pyproject.toml`` is the one place it is set)."""
    try:
        return importlib.metadata.version("rlmesh")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, uninstalled
        return "0.0.0+unknown"


PROTOCOL_VERSION: Final = 1
LIBRARY_VERSION: Final = _library_version()
CLIENT_NAME: Final = f"rlmesh-python/{LIBRARY_VERSION}"
LIBRARY_BUILD: Final = f"{LIBRARY_VERSION}+protocol.{PROTOCOL_VERSION}"
"""This build's identity (``rlmesh.__build__``): the library version and protocol version."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 256 * 1024 * 1024

# Ops (request header: [op, request_id, *args]).
OP_HELLO: Final = 0
OP_RESET: Final = 1
OP_STEP: Final = 2
OP_RENDER: Final = 3
OP_CLOSE: Final = 4
OP_PING: Final = 5
OP_AUTH: Final = 6
OP_SHUTDOWN: Final = 7
OP_PREDICT: Final = 8
OP_PREDICT_BATCH: Final = 9
OP_GET_ATTR: Final = 10
OP_CALL: Final = 11
OP_SET_ATTR: Final = 12
OP_REGION: Final = 13
"""The client's answer to a shared-memory offer (handshake only, never answered)."""

OP_NAMES: Final = {
    OP_HELLO: "HELLO",
    OP_RESET: "RESET",
    OP_STEP: "STEP",
    OP_RENDER: "RENDER",
    OP_CLOSE: "CLOSE",
    OP_PING: "PING",
    OP_AUTH: "AUTH",
    OP_SHUTDOWN: "SHUTDOWN",
    OP_PREDICT: "PREDICT",
    OP_PREDICT_BATCH: "PREDICT_BATCH",
    OP_GET_ATTR: "GET_ATTR",
    OP_CALL: "CALL",
    OP_SET_ATTR: "SET_ATTR",
    OP_REGION: "REGION",
}

# Capabilities a server lists in its contract (beyond the base protocol).
CAP_ATTRIBUTES: Final = "attributes"
"""The server answers GET_ATTR, CALL and SET_ATTR (``ServeOptions(remote_attributes=True)``)."""

# Reply status (reply header: [status, request_id, *values]).
STATUS_OK: Final = 0
STATUS_ERROR: Final = 1

# Error codes.
E_PROTOCOL: Final = "protocol_error"
E_VERSION: Final = "version_mismatch"
E_TOO_LARGE: Final = "message_too_large"
E_BUSY: Final = "env_busy"
E_FULL: Final = "server_full"
E_AUTH: Final = "auth_failed"
E_INVALID_ACTION: Final = "invalid_action"
E_RESET_NEEDED: Final = "reset_needed"
E_ENV: Final = "env_error"
E_ENCODE: Final = "encode_error"
E_SHUTTING_DOWN: Final = "shutting_down"
E_INTERNAL: Final = "internal"
E_DEADLINE: Final = "deadline_exceeded"
E_NOT_ALLOWED: Final = "not_allowed"
E_RESUME: Final = "resume_failed"
E_MODEL: Final = "model_error"
E_NO_ATTRIBUTE: Final = "no_attribute"

_ERROR_CLASSES: Final[dict[str, type[errors.RLMeshError]]] = {
    E_PROTOCOL: errors.ProtocolError,
    E_VERSION: errors.VersionMismatchError,
    E_TOO_LARGE: errors.MessageTooLargeError,
    E_BUSY: errors.EnvBusyError,
    E_FULL: errors.EnvBusyError,
    E_AUTH: errors.AuthenticationError,
    E_INVALID_ACTION: errors.InvalidActionError,
    E_RESET_NEEDED: errors.ResetNeededError,
    E_ENCODE: errors.EncodeError,
    E_SHUTTING_DOWN: errors.ConnectionLostError,
    E_INTERNAL: errors.ProtocolError,
    E_DEADLINE: errors.StepDeadlineError,
    E_NOT_ALLOWED: errors.NotAllowedError,
    E_RESUME: errors.SessionLostError,
    E_NO_ATTRIBUTE: errors.RemoteAttributeError,
}


def error_map(
    code: str,
    message: str,
    *,
    fatal: bool,
    exc_type: str | None = None,
    traceback: str | None = None,
) -> dict[str, Any]:
    """Build the error map carried by an error reply.

    Args:
        code: One of the ``E_*`` error codes.
        message: Human-readable description.
        fatal: Whether the server closes the connection after this reply.
        exc_type: Qualified name of the env's exception class, for ``env_error``.
        traceback: Formatted server-side traceback, for ``env_error``.

    Returns:
        The map to send as the single value of an error reply.
    """
    return {
        "code": code,
        "message": message,
        "type": exc_type,
        "traceback": traceback,
        "fatal": fatal,
    }


def error_from_map(error: Any) -> errors.RLMeshError:
    """Turn a received error map into the matching exception instance.

    Args:
        error: The value of an error reply, as decoded.

    Returns:
        An exception ready to raise (never raised here).
    """
    if not isinstance(error, dict):
        return errors.ProtocolError(f"malformed error reply: {error!r}")
    code = str(error.get("code"))
    message = str(error.get("message", ""))
    if code in (E_ENV, E_MODEL):
        remote = errors.RemoteModelError if code == E_MODEL else errors.RemoteEnvError
        return remote(str(error.get("type") or "Exception"), message,
                      str(error.get("traceback") or ""))
    cls = _ERROR_CLASSES.get(code, errors.ProtocolError)
    if cls is errors.ProtocolError and code not in _ERROR_CLASSES:
        message = f"[{code}] {message}"
    return cls(message)


def server_info() -> dict[str, Any]:
    """Describe this server implementation (and process) for the handshake contract."""
    return {
        "name": "rlmesh",
        "version": LIBRARY_VERSION,
        "python": platform.python_version(),
        "pid": os.getpid(),
    }
