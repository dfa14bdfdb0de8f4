"""The ``rlmesh`` subcommands that evaluate and inspect: eval, describe, plot, bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmesh.cli.contract_json import contract_json
from rlmesh.cli.describe_local import describe_local, is_local_target
from rlmesh.cli.imports import import_attribute
from rlmesh.cli.interrupts import held_interrupts
from rlmesh.cli.ready import watch_parent, write_ready
from rlmesh.client.options import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, ConnectOptions
from rlmesh.client.probe import probe
from rlmesh.evaluation.results import RunResult
from rlmesh.models.serve import DEFAULT_MAX_BATCH
from rlmesh.scaleout.dns import Resolver, find_statefulset, system_resolver
from rlmesh.tls import client_context
from rlmesh.wire.schema import schema_to_space

if TYPE_CHECKING:
    from rlmesh.models.model import Model
    from rlmesh.viewer.watch import EvalWatch

__all__ = ["add_commands"]


def load_policy(spec: str | None) -> Model:
    """``module:callable`` as a model (default: the random baseline).

    The attribute may be an :class:`rlmesh.Model` (or ``rlmesh.numpy.Model``) instance, a
    ``Model`` subclass (instantiated without arguments), or a function ``observation ->
    action`` (given numpy values). The current directory is importable, as with
    ``python -m``.
    """
    # (loaded here: models import the client side, which `rlmesh serve` in an older stack
    # than the client's must not need; docs/old-gym.md)
    from rlmesh.models.model import RANDOM_SAMPLE, Model, as_model

    if spec is None:
        return RANDOM_SAMPLE
    obj = import_attribute(spec, "--policy")
    if isinstance(obj, type) and issubclass(obj, Model):
        return obj()
    return as_model(obj)


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a policy on one or more endpoints; 0 when every episode finished."""
    if getattr(args, "fleet", None):
        from rlmesh.cli.ray_commands import eval_on_fleet

        return eval_on_fleet(args, cmd_eval)
    from rlmesh.evaluation.evaluate import evaluate
    from rlmesh.evaluation.progress import ProgressHooks

    model = load_policy(args.policy)
    try:
        addresses = eval_addresses(args)
    except ValueError as exc:  # which endpoints to play on is a usage error: exit 2
        args.usage_error(str(exc))
    connect = ConnectOptions(connect_timeout=args.connect_timeout, timeout=args.timeout,
                             token=args.token,
                             tls=client_context(args.tls_ca) if args.tls_ca else None)
    episodes = args.episodes
    if args.plot:  # before the run, not after it: a missing extra must not waste one
        from rlmesh.evaluation.plot import pyplot

        pyplot()
    hooks: list[Any] = []
    if args.record:
        from rlmesh.evaluation.recording import VideoRecorder

        hooks.append(VideoRecorder(args.record))
    watch = _watch(args)
    try:
        terminal = watch is not None and watch.terminal is not None
        with ProgressHooks(episodes, enabled=not args.quiet and not terminal) as progress:
            result = evaluate(model, addresses, episodes=episodes, seed=args.seed,
                              max_episode_steps=args.max_steps, hooks=[progress, *hooks],
                              allow_mixed=args.allow_mixed, options=connect, view=watch)
        _finish(args, result, watch)
    finally:
        if watch is not None:
            watch.close()
    if result.interrupted:
        return 130
    return 0 if result.complete else 1


def _finish(args: argparse.Namespace, result: RunResult, watch: EvalWatch | None) -> None:
    """Report the run; keep the dashboards up ``--view-linger`` seconds unless it was cut.

    The terminal dashboard is given back before the summary is printed (the alternate
    screen would swallow it); the web page stays up while the summary is read. A Ctrl+C
    while the report is written waits for it to be whole, then ends the lingering.
    """
    linger = 0.0 if watch is None or result.interrupted else args.view_linger
    if watch is not None and watch.terminal is not None:
        _linger(watch, linger)
        watch.close()
        linger = 0.0
    with held_interrupts() as held:
        _report(args, result)
    if watch is not None and not held:
        _linger(watch, linger)


def _report(args: argparse.Namespace, result: RunResult) -> None:
    """Save, plot and summarize a finished ``rlmesh eval`` run as its options ask."""
    from rlmesh.evaluation.progress import print_summary

    result.settings["policy_spec"] = args.policy or "random"
    if args.json:
        result.save(args.json)
        print(f"rlmesh: wrote {result.num_episodes} episodes to {args.json}", file=sys.stderr)
    if args.plot:
        from rlmesh.evaluation.plot import plot_run

        plot_run(result, args.plot)
        print(f"rlmesh: wrote {args.plot}", file=sys.stderr)
    print_summary(result)


def _watch(args: argparse.Namespace) -> EvalWatch | None:
    """The dashboards ``--view`` asks for (the web page on loopback, its address printed)."""
    if not args.view:
        return None
    from rlmesh.viewer.watch import EvalWatch

    try:
        return EvalWatch.open(args.view)
    except (ValueError, TypeError) as exc:
        message = str(exc)
    except OSError as exc:
        message = f"--view {args.view}: cannot listen there ({exc})"
    args.usage_error(message)  # (exits 2)
    return None


def _linger(watch: EvalWatch, seconds: float) -> None:
    """Keep the final summary up for ``seconds`` (``inf``: until Ctrl+C or ``q``)."""
    if seconds <= 0:
        return
    how = "until Ctrl+C" if seconds == float("inf") else f"for {seconds:g} s (Ctrl+C ends it)"
    if watch.url is not None and watch.terminal is None:
        print(f"rlmesh: the dashboard stays at {watch.url} {how}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        watch.linger(seconds)


def eval_addresses(args: argparse.Namespace, resolver: Resolver = system_resolver) -> list[str]:
    """The endpoints ``rlmesh eval`` plays on: the ADDRESS list, or a StatefulSet's pods.

    With ``--statefulset``, the pods' DNS names are waited for (up to ``--connect-timeout``)
    and those published by then are used; the others are named on stderr.

    Raises:
        ValueError: For neither or both of ADDRESS and ``--statefulset``, or a bad spec.
        ConnectFailedError: If no pod name resolved in time.
    """
    if args.statefulset is None:
        if args.replicas is not None:
            raise ValueError("--replicas goes with --statefulset")
        if not args.addresses:
            raise ValueError("give endpoint ADDRESSes, --statefulset SPEC --replicas N, or "
                             "--fleet NAME")
        return list(args.addresses)
    if args.addresses:
        raise ValueError("give endpoint ADDRESSes or --statefulset, not both")
    if args.replicas is None:
        raise ValueError("--statefulset needs --replicas N (the StatefulSet's replicas)")
    found, missing = find_statefulset(args.statefulset, args.replicas, args.connect_timeout,
                                      resolver=resolver)
    if missing:
        print(f"rlmesh: {len(missing)} pod names do not resolve (not ready?), playing "
              f"without them: {', '.join(missing)}", file=sys.stderr)
    return found


def cmd_serve_model(args: argparse.Namespace) -> int:
    """Serve a policy until interrupted (SIGINT or SIGTERM)."""
    from rlmesh.models.serve import ModelSource
    from rlmesh.server.server import EnvServer, stop_on_signals

    model = load_policy(args.policy)
    server = EnvServer(ModelSource(model, max_batch=args.max_batch), args.address,
                       token=args.token)
    stop_on_signals()
    if args.parent_fd is not None:
        watch_parent(args.parent_fd, server.shutdown)
    if args.ready_file:
        write_ready(args.ready_file, server.address)
    server.serve()
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """Print an endpoint's contract, or a local target's describe.v1 envelope, as JSON.

    Exits 1 if an endpoint described itself only in part (it needs a token).
    """
    if is_local_target(args.address):
        print(describe_local(args.address, args.out, args.generated_at))
        return 0
    contract = probe(args.address, timeout=args.timeout, token=args.token,
                     tls=client_context(args.tls_ca) if args.tls_ca else None)
    described = contract_json(contract)
    spaces = {}
    for key in ("observation_space", "action_space", "single_observation_space",
                "single_action_space"):
        if key in contract:
            spaces[key] = str(schema_to_space(contract[key]))
    if spaces:
        described["spaces"] = spaces
    print(json.dumps(described, indent=2, sort_keys=False))
    if "kind" not in contract:
        print(f"rlmesh: error: {args.address} requires a token to describe itself: pass "
              "--token or set RLMESH_TOKEN", file=sys.stderr)
        return 1
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw a saved run (``eval --json``) into a PNG."""
    from rlmesh.evaluation.plot import plot_run

    result = RunResult.load(args.file)
    output = args.output or str(Path(args.file).with_suffix(".png"))
    plot_run(result, output, title=args.title)
    print(f"rlmesh: wrote {output}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite's quick mode (needs the source checkout's benchmarks/)."""
    directory = _benchmarks_dir()
    scripts = ["bench_core.py", "bench_vector.py"] if args.suite == "all" else [
        f"bench_{args.suite}.py"]
    code = 0
    for script in scripts:
        command = [sys.executable, str(directory / script), *(["--quick"] if args.quick else [])]
        print(f"rlmesh: running {' '.join(command[1:])}", file=sys.stderr, flush=True)
        code = max(code, subprocess.call(command, cwd=directory.parent))
    return 1 if code else 0


def _benchmarks_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (Path.cwd() / "benchmarks", here.parents[2] / "benchmarks"):
        if (candidate / "bench_core.py").is_file():
            return candidate
    raise ValueError("the benchmark suite lives in the source checkout (benchmarks/); run "
                     "`rlmesh bench` from there")


COMMON = argparse.ArgumentParser(add_help=False)
"""Flags every subcommand accepts after its name too (``rlmesh serve -v ...``)."""
COMMON.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help="log details and show tracebacks")
COMMON.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                    default=argparse.SUPPRESS,
                    help="how much rlmesh logs to stderr (default info; -v means debug)")


def command(sub: Any, name: str, *, help: str, description: str, examples: list[str],
            func: Any) -> argparse.ArgumentParser:
    """Add subcommand ``name``: one-line help, a description, and an example epilog."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description, parents=[COMMON],
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=func)
    return parser


def add_commands(sub: Any) -> None:
    """Add ``eval``, ``serve-model``, ``describe``, ``plot`` and ``bench`` to the parser."""
    ev = command(sub, "eval", help="evaluate a policy on one or more endpoints",
                 description="Play planned, seeded episodes of a policy on every endpoint at\n"
                 "once, with a live progress bar and a summary table. Endpoints that are\n"
                 "still starting are waited for (--connect-timeout).",
                 examples=["rlmesh eval 127.0.0.1:5555 --episodes 20",
                           "rlmesh eval 127.0.0.1:5555 127.0.0.1:5556 --policy "
                           "my_policies:greedy --json run.json --plot run.png",
                           "rlmesh eval --statefulset envs.envs.rl.svc:5555 --replicas 8 "
                           "--episodes 100",
                           "rlmesh eval 127.0.0.1:5555 127.0.0.1:5556 --episodes 50 "
                           "--view http:8800 --view-linger 60",
                           "rlmesh eval 127.0.0.1:5555 127.0.0.1:5556 --episodes 50 "
                           "--view terminal"],
                 func=cmd_eval)
    ev.set_defaults(usage_error=ev.error)
    ev.add_argument("addresses", nargs="*", metavar="ADDRESS",
                    help="endpoints serving the same env (host:port, tls://..., unix://...)")
    ev.add_argument("--statefulset", metavar="SPEC",
                    help="instead of ADDRESSes: the pods of a Kubernetes StatefulSet, found "
                         "by their DNS names, SPEC being STATEFULSET[.SERVICE[.NAMESPACE.svc]]"
                         ":PORT (envs.envs.rl.svc:5555 is envs-0.envs.rl.svc:5555, ...)")
    ev.add_argument("--replicas", type=_positive, metavar="N",
                    help="with --statefulset: its number of pods")
    ev.add_argument("--fleet", metavar="NAME", help="evaluate on the servers of the named "
                    "fleet on the running Ray cluster (see rlmesh ray serve)")
    ev.add_argument("--episodes", type=_positive, default=10,
                    help="episodes to play in all (default %(default)s)")
    ev.add_argument("--seed", type=int, default=0,
                    help="episode i is reset with seed S+i (default %(default)s)")
    ev.add_argument("--policy", metavar="MODULE:CALLABLE",
                    help="an rlmesh Model, Model subclass or function obs -> action, where obs "
                         "is a numpy array (or a dict/tuple of them) as the env produced it; "
                         "the current directory is importable (default: random actions)")
    ev.add_argument("--max-steps", type=_positive, metavar="N",
                    help="cut episodes after N steps")
    ev.add_argument("--json", metavar="FILE", help="write every episode and the settings")
    ev.add_argument("--plot", metavar="PNG",
                    help="draw returns and lengths (needs matplotlib: the 'plot' extra)")
    ev.add_argument("--record", metavar="DIR", help="save an mp4 per episode from rgb_array "
                    "frames (needs imageio-ffmpeg: the 'record' extra)")
    ev.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                    help="seconds per request (default %(default)s)")
    ev.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT,
                    metavar="S",
                    help="seconds to wait for endpoints that are still starting, and for each "
                         "handshake (default %(default)s)")
    ev.add_argument("--allow-mixed", action="store_true",
                    help="evaluate on endpoints that serve different envs (refused otherwise: "
                         "their mean return would pool two experiments)")
    ev.add_argument("--token", help="the endpoints' token (default RLMESH_TOKEN)")
    ev.add_argument("--tls-ca", metavar="PEM", help="CA to verify tls:// endpoints with")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.add_argument("--view", metavar="http[:PORT]|terminal|both",
                    help="watch the run: a dashboard with every endpoint's frames, returns "
                    "and events, in a browser (on 127.0.0.1, any free port or PORT; its "
                    "address is printed), in this terminal (q stops the run), or both")
    ev.add_argument("--view-linger", type=_seconds, default=0.0, metavar="S",
                    help="with --view: keep showing the final summary S seconds after the run "
                    "('inf': until Ctrl+C, or q in the terminal; default 0: exit when the "
                    "run ends)")

    sm = command(sub, "serve-model", help="serve a policy for rlmesh.RemoteModel",
                 description="Serve a policy so that rlmesh.RemoteModel(ADDRESS) can use it\n"
                 "from anywhere, like a local model.",
                 examples=["rlmesh serve-model my_policies:greedy --address 127.0.0.1:5600"],
                 func=cmd_serve_model)
    sm.add_argument("policy", metavar="MODULE:CALLABLE",
                    help="an rlmesh Model, Model subclass or function obs -> action")
    sm.add_argument("--address", default="127.0.0.1:5556",
                    help="host:port or unix:///path (default %(default)s)")
    sm.add_argument("--token", help="require clients to know this token (default "
                    "RLMESH_TOKEN)")
    sm.add_argument("--ready-file", help="write the resolved address here once listening")
    sm.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)  # sandboxes
    sm.add_argument("--max-batch", type=_positive, default=DEFAULT_MAX_BATCH, metavar="N",
                    help="refuse batch requests of more than N lanes (default %(default)s)")

    de = command(sub, "describe", help="print an endpoint's contract, or a local target's "
                 "describe.v1 envelope, as JSON",
                 description="Print what an endpoint serves (kind, spaces with shape and\n"
                 "dtype, spec, metadata) as JSON. Exits 1 if the endpoint needs a token\n"
                 "that was not given. A local target (an env id or module:attr naming an\n"
                 "EnvFactory, a Model or an env factory) prints its rlmesh.describe.v1\n"
                 "envelope instead, built in this process.",
                 examples=["rlmesh describe 127.0.0.1:5555",
                           "RLMESH_TOKEN=... rlmesh describe 10.0.0.5:5555",
                           "rlmesh describe mypkg.envs:MyFactory --out describe.json"],
                 func=cmd_describe)
    de.add_argument("address", metavar="TARGET",
                    help="the endpoint (host:port, tls://..., unix://...), or a local env id "
                    "or module:attr")
    de.add_argument("--out", metavar="FILE",
                    help="local target: also write the envelope to FILE")
    de.add_argument("--generated-at", metavar="RFC3339",
                    help="local target: record this timestamp (omit for a reproducible "
                    "envelope)")
    de.add_argument("--timeout", type=float, default=5.0, metavar="S",
                    help="seconds to wait for the answer (default %(default)s)")
    de.add_argument("--token", help="the endpoint's token (default RLMESH_TOKEN); without it "
                    "a token endpoint says only that it needs one (exit 1)")
    de.add_argument("--tls-ca", metavar="PEM",
                    help="CA to verify a tls:// endpoint with (default: system CAs)")

    pl = command(sub, "plot", help="draw a run saved by eval --json (needs matplotlib)",
                 description="Draw a saved run into a PNG: returns per endpoint and a\n"
                 "histogram of episode lengths.",
                 examples=["rlmesh plot run.json -o run.png"], func=cmd_plot)
    pl.add_argument("file", help="a run saved by rlmesh eval --json")
    pl.add_argument("-o", "--output", metavar="PNG", help="default: FILE with .png")
    pl.add_argument("--title", help="the figure's title (default: policy, env, version)")

    be = command(sub, "bench", help="run the benchmark suite (quick mode by default)",
                 description="Measure rlmesh against in-process envs, a raw-socket floor and\n"
                 "Gymnasium's vector envs, as ratios (needs the source checkout's\n"
                 "benchmarks/).",
                 examples=["rlmesh bench", "rlmesh bench --suite core --full"],
                 func=cmd_bench)
    be.add_argument("--suite", choices=["core", "vector", "all"], default="all",
                    help="which benchmarks: core (one env), vector (vector envs), or all "
                    "(default %(default)s)")
    be.add_argument("--full", dest="quick", action="store_false",
                    help="the full runs recorded in benchmarks/RESULTS.md (minutes)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0 (or inf)")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value
