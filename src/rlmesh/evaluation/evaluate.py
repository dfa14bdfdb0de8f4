"""``rlmesh.evaluate``: one model, planned episodes, spread over many endpoints at once.

Every episode gets its seed when the run is planned, so the results do not depend on which
endpoint played it or when. Each endpoint slot has a thread that takes the next episode from
a shared queue (a vector endpoint takes one per lane). The endpoints are a list of addresses
or a live :class:`~rlmesh.vector.endpoints.EndpointSet` whose addresses change as servers
restart. When an endpoint fails mid-episode (it dies, hangs past its timeout, or its
connection breaks), the episode goes back to the queue for another endpoint, the failure is
recorded in ``RunResult.events``, and the slot's thread waits for its endpoint to serve again,
at its current address, with backoff (:mod:`rlmesh.evaluation.slots`). When the env raises,
the episode is retried on another endpoint, up to ``max_attempts`` starts. A bug on the
caller's side (the policy or a hook raising, or a served model answering with
:class:`~rlmesh.RemoteModelError`) is not an episode failure: no retry fixes it, so the
run stops and ``evaluate`` raises it, as ``run`` does. Ctrl+C (or ``q`` in the terminal
dashboard of ``view="terminal"``) returns the episodes that finished.

Before the first episode every endpoint is asked what it serves (a probe: no session, no env
built). Endpoints still starting are waited for up to ``connect_timeout``; endpoints that
serve different envs (ids or spaces) are refused unless ``allow_mixed`` is set, since their
mean return would pool two experiments.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Any

from rlmesh.client.options import DEFAULT_CONNECT_TIMEOUT, ConnectOptions
from rlmesh.errors import (
    ConnectFailedError,
    EndpointKindError,
    RemoteEnvError,
    RemoteModelError,
    RLMeshTimeoutError,
    TransportError,
)
from rlmesh.evaluation.adapting import attach
from rlmesh.evaluation.hooks import HookList, Hooks
from rlmesh.evaluation.identity import EnvIdentity, probe_identities, provenance
from rlmesh.evaluation.lanes import play_lanes
from rlmesh.evaluation.policy import Policy, as_policy
from rlmesh.evaluation.results import EpisodeResult, RunResult
from rlmesh.evaluation.run import plan_seeds, play_episode
from rlmesh.evaluation.slots import Outcome, SlotWorker
from rlmesh.evaluation.viewing import open_view
from rlmesh.vector.endpoints import EndpointSet, as_endpoint_set

__all__ = ["evaluate"]

_Job = tuple[int, "int | None", int]  # (index, seed, attempts so far)


def evaluate(model: Any, addresses: str | Sequence[str] | EndpointSet, *,
             episodes: int | None = None,
             seeds: Sequence[int | None] | None = None, seed: int | None = None,
             max_episode_steps: int | None = None,
             hooks: Hooks | Sequence[Hooks] | None = None, max_attempts: int = 3,
             allow_mixed: bool = False, options: ConnectOptions | None = None,
             reconnect_timeout: float | None = 10.0, view: Any = None,
             **connect: Any) -> RunResult:
    """Play planned episodes of ``model`` on every endpoint at once.

    Args:
        model: An :class:`rlmesh.Model`, ``rlmesh.RANDOM_SAMPLE`` or a callable policy
            (shared by all endpoints' threads, so it must be thread-safe).
        addresses: One endpoint address, several (single-env or vector endpoints), or a live
            :class:`~rlmesh.vector.endpoints.EndpointSet` (a fleet whose servers may
            restart at new addresses: a failed slot is played on again once it serves).
        episodes: Episodes to play; default ``len(seeds)``, else 1.
        seeds: The seed of each episode.
        seed: Instead of ``seeds``: episode ``i`` gets ``seed + i``.
        max_episode_steps: Cut episodes longer than this (they count as truncated).
        hooks: :class:`rlmesh.Hooks`, called one at a time from the endpoints' threads.
        max_attempts: Starts allowed per episode before it is given up (recorded in
            ``events``).
        allow_mixed: Play on endpoints that serve different envs (ids or spaces) anyway.
            Without it such a run is refused, and an endpoint that turns out to serve another
            env once it comes up is left out (an ``endpoint_mismatch`` event).
        options: How to connect to the endpoints (a :class:`~rlmesh.ConnectOptions`; its
            ``connect_timeout`` is also how long endpoints still starting are waited for).
        reconnect_timeout: How long the run waits, once no endpoint at all is serving, for
            one to serve again before it returns the episodes it has (an ``incomplete``
            event); ``None`` waits as long as it takes. While some endpoint serves, a failed
            one is waited for until the run ends.
        view: Watch the run: ``"http"`` (any free port) or ``"http:PORT"`` serves a
            dashboard on loopback for the length of the run (its address is printed),
            ``"terminal"`` (or ``True``) draws one in this terminal (``q`` stops the run,
            which returns the episodes finished), ``"both"`` does both, and a
            ``rlmesh.View`` says how; a :class:`~rlmesh.viewer.dashboard.Dashboard` or an
            :class:`~rlmesh.viewer.watch.EvalWatch` of your own stays open after it
            (docs/viewer.md).
        **connect: Its fields to set instead: ``connect_timeout`` (default 10 s),
            ``timeout``, ``token``, ``tls``.

    Returns:
        Every finished episode in plan order, the run's settings (env id and spaces, rlmesh
        version, time and host among them), and its events.

    Raises:
        ConnectFailedError: If no endpoint can be reached within ``connect_timeout``.
        EndpointKindError: If the endpoints serve different envs and ``allow_mixed`` is not
            set.
        Exception: Whatever the policy or a hook raised (the run stops at the first such
            bug), including :class:`~rlmesh.RemoteModelError` from a served model.
    """
    model = as_policy(model)
    endpoints = as_endpoint_set(addresses)
    if not endpoints.addresses:
        raise ValueError("evaluate() needs at least one address")
    plan = plan_seeds(seeds, episodes, seed)
    connection = (options or ConnectOptions()).replace(**connect)
    hook_list = HookList(hooks)
    viewing = open_view(view, [a for a in endpoints.addresses if a], len(plan))
    if viewing.hooks is not None:
        hook_list = HookList([*hook_list.hooks, viewing.hooks])
    try:
        run = _Run(model, plan, endpoints, max_episode_steps, hook_list, max_attempts,
                   connection, allow_mixed)
        run.reconnect_timeout = reconnect_timeout
        run.stop_signal = viewing.stop
        return run.execute()
    finally:
        viewing.close()


class _Run:
    def __init__(self, model: Policy, plan: list[int | None], endpoints: EndpointSet,
                 max_steps: int | None, hooks: HookList, max_attempts: int,
                 connect: ConnectOptions, allow_mixed: bool) -> None:
        self.model, self.endpoints, self.max_steps = model, endpoints, max_steps
        self.hooks, self.max_attempts, self.connect = hooks, max_attempts, connect
        self.allow_mixed = allow_mixed
        limit = connect.connect_timeout
        self.deadline = None if limit is None else time.monotonic() + limit
        """Until when endpoints that are still starting are waited for."""
        self.probe_options: dict[str, Any] = {
            "timeout": DEFAULT_CONNECT_TIMEOUT if limit is None else limit,
            "token": connect.token, "tls": connect.tls}
        self.identity: EnvIdentity | None = None
        """What the run plays on: the first reachable endpoint's env."""
        self.queue: collections.deque[_Job] = collections.deque(
            (i, s, 0) for i, s in enumerate(plan))
        self.cond = threading.Condition()
        self.in_flight = 0
        self.live = 0
        """Slot threads still running."""
        self.serving = 0
        """Slots connected and playing now."""
        self.all_down_since: float | None = time.monotonic()
        """Since when no slot has been serving (``None`` while one is)."""
        self.reconnect_timeout: float | None = 10.0
        self.stop_signal: threading.Event | None = None
        """Set by a viewer to stop the run early (as Ctrl+C does)."""
        self.stop = False
        self.failure: BaseException | None = None
        """A bug that ended the run (the policy's, a hook's): raised by :meth:`execute`."""
        self.envs: list[Any] = []
        """Connections in use by the endpoints' threads (cut short on Ctrl+C)."""
        self.result = RunResult(planned=len(plan), settings={
            "endpoints": endpoints.addresses, "policy": model.name, "seeds": plan,
            "max_episode_steps": max_steps, "max_attempts": max_attempts,
            "allow_mixed": allow_mixed, **provenance()})

    def execute(self) -> RunResult:
        self._bind()
        self.model.load()
        threads = [threading.Thread(target=self._serve_slot, args=(k,), daemon=True,
                                    name=f"rlmesh-eval-{a or k}")
                   for k, a in enumerate(self.endpoints.addresses)]
        self.live = len(threads)
        started = time.perf_counter()
        self.all_down_since = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            self._wait()
        except KeyboardInterrupt:
            with self.cond:
                self.result.interrupted = True
        with self.cond:
            self.stop = True
            self.cond.notify_all()
            cut = self.result.interrupted or self.failure is not None
            envs = list(self.envs) if cut else []
        for env in envs:  # cut episodes in flight short: their requests fail at once
            env.abandon()
        for thread in threads:
            thread.join(5)
        self.model.finish()
        if self.failure is not None:
            raise self.failure
        with self.cond:  # a snapshot: a thread that is somehow still running changes nothing
            result = dataclasses.replace(
                self.result, episodes=sorted(self.result.episodes, key=lambda e: e.index),
                events=list(self.result.events), settings=dict(self.result.settings))
            if self.queue and not result.interrupted:
                result.events.append(_event("incomplete", None, f"{len(self.queue)} episodes "
                                            "were not played: no endpoint was left"))
                self.hooks.on_event(result.events[-1])
            result.settings["wall_s"] = time.perf_counter() - started
        self.hooks.on_run_end(result)
        return result

    def _wait(self) -> None:
        """Until the run is over, fails, or a viewer stops it (then it counts as interrupted)."""
        signal = self.stop_signal
        with self.cond:
            while self.live and (self.queue or self.in_flight) and not self.failure:
                if signal is not None and signal.is_set():
                    self.result.interrupted = True
                    return
                self.cond.wait(0.2)

    def _bind(self) -> None:
        """Learn what the endpoints serve, refuse a mix of envs, bind the model to its spaces.

        Waits (up to ``connect_timeout``) until at least one endpoint answers.
        """
        identities: dict[str, EnvIdentity] = {}
        errors: dict[str, str] = {}
        delay = 0.01
        while not identities:
            starting = probe_identities(self.endpoints.addresses, self.probe_options,
                                        identities, errors)
            if not identities:
                late = self.deadline is not None and time.monotonic() >= self.deadline
                if late or not starting:
                    raise ConnectFailedError("no endpoint could be reached: " + "; ".join(
                        f"{a}: {e}" for a, e in errors.items()))
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        first = next(a for a in identities)
        self.identity = identities[first]
        others = {a: i for a, i in identities.items() if not i.matches(self.identity)}
        if others and not self.allow_mixed:
            lines = [f"  {first}: {self.identity.describe()}"] + [
                f"  {a}: {i.describe()}" for a, i in others.items()]
            raise EndpointKindError(
                "the endpoints serve different envs, so their results cannot be pooled:\n"
                + "\n".join(lines) + "\nevaluate one env at a time, or pass allow_mixed=True "
                "(rlmesh eval --allow-mixed) to pool them anyway")
        self.result.settings.update(self.identity.settings())
        self.model.bind(self.identity.observation_space, self.identity.action_space)
        attach(self.model, self.identity.metadata or {}, self.identity.observation_space,
               self.identity.action_space)

    # -- the slots' side (SlotHost) ----------------------------------------------------------

    def connect_options(self) -> ConnectOptions:
        return self.connect

    def over(self) -> bool:
        with self.cond:
            return self.stop or not (self.queue or self.in_flight)

    def given_up(self) -> bool:
        with self.cond:
            since = self.all_down_since
            return (not self.serving and since is not None and self.reconnect_timeout is not None
                    and time.monotonic() - since > self.reconnect_timeout)

    def note(self, kind: str, address: str | None, message: str) -> None:
        with self.cond:
            self._event(kind, address, message)

    def play_on(self, env: Any, address: str) -> Outcome:
        identity = EnvIdentity.of_env(env)
        reference = self.identity
        if not self.allow_mixed and reference is not None and not identity.matches(reference):
            env.close()
            self.note("endpoint_mismatch", address, f"serves {identity.describe()}, unlike "
                      "the run's other endpoints; left out (allow_mixed=True pools it anyway)")
            return "refused"
        with self.cond:
            self.envs.append(env)
            self.serving += 1
            stopping = self.stop
        try:
            return "done" if stopping or self._play_all(env, address) else "failed"
        finally:
            with self.cond:
                self.envs.remove(env)
                self.serving -= 1
                if not self.serving:
                    self.all_down_since = time.monotonic()
            env.close()

    def _serve_slot(self, slot: int) -> None:
        try:
            SlotWorker(self, slot).run()
        finally:
            with self.cond:
                self.live -= 1
                self.cond.notify_all()

    def _play_all(self, env: Any, address: str) -> bool:
        """Play queued episodes on ``env`` until none is left (``True``) or it fails.

        After a failure of the endpoint its unfinished episodes are back in the queue and
        ``False`` is returned.
        """
        lanes = int(getattr(env, "num_envs", 1)) if hasattr(env, "single_action_space") else 0
        while True:
            jobs = self._take(max(lanes, 1))
            if not jobs:
                return True
            finished: set[int] = set()

            def done(result: EpisodeResult, jobs: list[_Job] = jobs,
                     finished: set[int] = finished) -> None:
                attempts = next(a for i, _, a in jobs if i == result.index)
                result.attempts = attempts + 1
                finished.add(result.index)
                with self.cond:
                    self.result.episodes.append(result)

            try:
                if lanes:
                    play_lanes(self.model, env, [(i, s) for i, s, _ in jobs], self.max_steps,
                               self.hooks, address, done)
                else:
                    index, seed, _ = jobs[0]
                    done(play_episode(self.model, env, index, seed, self.max_steps, self.hooks,
                                      address))
            except (TransportError, RLMeshTimeoutError) as exc:
                self._give_back([j for j in jobs if j[0] not in finished], address, exc,
                                "endpoint_failed")
                return False
            except RemoteModelError as exc:  # a served policy's bug: no retry fixes it
                self._fail(exc)
                return True
            except RemoteEnvError as exc:  # the env raised: retry elsewhere
                self._give_back([j for j in jobs if j[0] not in finished], address, exc,
                                "episode_error")
            except Exception as exc:  # a bug in the policy or a hook: the run stops
                self._fail(exc)
                return True
            finally:
                with self.cond:
                    self.in_flight -= len(jobs)
                    self.cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        """Stop the run because of ``exc``, which :meth:`execute` raises (the first one)."""
        with self.cond:
            if self.failure is None and not self.stop:
                self.failure = exc
            self.stop = True
            self.cond.notify_all()

    def _take(self, count: int) -> list[_Job]:
        """Up to ``count`` queued episodes; empty when all are done or the run stops.

        Waits while other endpoints have episodes in flight: they may fail and come back.
        """
        with self.cond:
            while not self.stop:
                if self.queue:
                    jobs = [self.queue.popleft() for _ in range(min(count, len(self.queue)))]
                    self.in_flight += len(jobs)
                    return jobs
                if not self.in_flight:
                    return []
                self.cond.wait(0.2)
            return []

    def _give_back(self, jobs: list[_Job], address: str, exc: BaseException,
                   kind: str) -> None:
        with self.cond:
            if self.stop:  # interrupted: nothing goes back, nothing to report
                self.cond.notify_all()
                return
            for index, seed, attempts in reversed(jobs):
                if attempts + 1 >= self.max_attempts:
                    self._event("episode_failed", address, f"episode {index} (seed {seed}) "
                                f"failed {attempts + 1} times; last error: {exc}", index)
                else:
                    self.queue.appendleft((index, seed, attempts + 1))
            indices = [j[0] for j in jobs]
            self._event(kind, address, f"{type(exc).__name__}: {exc}; episodes {indices} go "
                        "back to the queue", *indices[:1])
            self.cond.notify_all()

    def _event(self, kind: str, address: str | None, message: str,
               index: int | None = None) -> None:
        """Record an event and tell the hooks (the caller holds ``cond``)."""
        self.result.events.append(_event(kind, address, message, index))
        self.hooks.on_event(self.result.events[-1])


def _event(kind: str, address: str | None, message: str,
           index: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "endpoint": address, "message": message, "episode": index,
            "time": time.time()}
