"""The numpy backend: remote envs that return numpy values.

Example::

    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from __future__ import annotations

from rlmesh.client.env import NumpyRemoteEnv
from rlmesh.models.model import Model
from rlmesh.vector.env import RemoteVectorEnv

__all__ = ["Model", "RemoteEnv", "RemoteVectorEnv"]


class RemoteEnv(NumpyRemoteEnv):
    """A ``gymnasium.Env`` served by an rlmesh endpoint, with numpy values.

    Observations, rewards, flags and ``info`` arrive exactly as the served env produced
    them: numpy arrays keep their dtype and shape, numpy scalars stay numpy scalars, tuples
    stay tuples. Every array is owned by the caller and writable; rlmesh never reuses its
    memory. ``observation_space`` and ``action_space`` are Gymnasium spaces equal to the
    server's, so ``action_space.sample()`` and seeding behave as in Gymnasium.

    Args:
        address: ``"host:port"``, ``"tcp://host:port"`` or ``"unix:///path"``.
        connect_timeout: Seconds allowed to connect and complete the handshake.
        timeout: Seconds allowed for each request (``None`` disables the limit).
        max_message_bytes: Largest reply accepted.
        token: The endpoint's shared secret, if it requires one (default ``RLMESH_TOKEN``).
        tls: An ``ssl.SSLContext`` (see :func:`rlmesh.tls.client_context`) to connect over
            TLS, ``True`` for one trusting the system's CAs; a ``tls://`` address implies
            ``True``.

    Raises:
        ConnectFailedError: The endpoint cannot be reached.
        EnvBusyError: The endpoint's single env instance is in use by another client.
        VersionMismatchError: The server speaks another protocol version.

    One ``RemoteEnv`` is one connection; it is safe to use from any thread (calls are
    serialised), and one per thread is the way to drive endpoints in parallel.

    Gymnasium's escape hatches reach the served env (``docs/protocol.md`` section 13):
    ``env.unwrapped`` is this object, and a public name it does not have itself is looked up
    on the served env, through its wrappers, so ``env.unwrapped.x_threshold``,
    ``env.get_wrapper_attr("x_threshold")`` and ``env.unwrapped.get_action_meanings()`` work
    as on a local env (a method is a :class:`~rlmesh.client.attributes.RemoteMethod`; arguments and
    results travel as data). ``env.set_wrapper_attr("gravity", 5.0)`` changes the served env;
    a plain ``env.gravity = 5.0`` only sets an attribute on this object. A name the served env
    lacks raises ``RemoteAttributeError`` (an ``AttributeError``); names starting with ``_``
    never leave this process.
    """
