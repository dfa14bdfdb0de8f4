r"""Render the rlmesh Kubernetes manifests with your parameters (standard library only).

    python deploy/kubernetes/render.py --name envs --namespace rl --replicas 8 \\
        --image registry.example/rlmesh-envs:1 --target CartPole-v1 > envs.yaml
    kubectl apply -f envs.yaml

The templates beside this file (``templates/*.yaml``) are plain Kubernetes YAML with
``${placeholders}``; every value is checked here, then written as a YAML scalar that cannot
change the document's structure (strings are JSON-quoted). Out come, as one multi-document
YAML stream: the headless Service, the StatefulSet of env servers, a PodDisruptionBudget, the
evaluator Job, and, with ``--generate-token``, the Secret holding a fresh random token.
``--only`` picks some of them (``--only service,statefulset``).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import string
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PARTS", "main", "parameters", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
PARTS = ("secret", "service", "statefulset", "poddisruptionbudget", "evaluator-job")
"""The documents, in the order they are applied."""

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_INTS = ("replicas", "port")


def _label(value: str, what: str, longest: int) -> str:
    if len(value) > longest or not _LABEL.match(value):
        raise ValueError(f"{what} {value!r} must be lowercase letters, digits and '-', at most "
                         f"{longest} characters, starting and ending alphanumeric")
    return value


def _quantity(value: str, what: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(f"{what} {value!r} is not a Kubernetes quantity (500m, 2, 1Gi)")
    return value


def _count(value: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{what} must be {low} to {high}, not {value!r}")
    return value


def parameters(args: argparse.Namespace) -> dict[str, Any]:
    """Check the flags and derive every placeholder's value.

    Raises:
        ValueError: For a value Kubernetes would refuse or that could break the YAML.
    """
    name = _label(args.name, "--name", 52)  # pod names add -<ordinal> and a revision hash
    namespace = _label(args.namespace, "--namespace", 63)
    port = _count(args.port, "--port", 1, 65535)
    replicas = _count(args.replicas, "--replicas", 1, 100_000)
    if not _IMAGE.match(args.image):
        raise ValueError(f"--image {args.image!r} is not an image reference")
    if not args.target.strip() or any(ch in args.target for ch in "\r\n\t"):
        raise ValueError("--target must be one line: an env id or module:attr")
    return {
        "name": name, "namespace": namespace, "replicas": replicas, "port": port,
        "image": args.image, "target": args.target,
        "num_envs": str(_count(args.num_envs, "--num-envs", 1, 1_000_000)),
        "token_secret": _label(args.token_secret or f"{name}-token", "--token-secret", 63),
        "cpu": _quantity(args.cpu, "--cpu"), "memory": _quantity(args.memory, "--memory"),
        "evaluator_cpu": _quantity(args.evaluator_cpu, "--evaluator-cpu"),
        "spread_policy": "DoNotSchedule" if args.strict_spread else "ScheduleAnyway",
        "listen_address": f"0.0.0.0:{port}", "probe_address": f"127.0.0.1:{port}",
        "dns_spec": f"{name}.{name}.{namespace}.svc:{port}",
        "replicas_text": str(replicas), "job_name": f"{name}-eval",
        "episodes": str(_count(args.episodes, "--episodes", 1, 10**9)),
        "seed": str(args.seed),
        "connect_timeout": str(_count(args.connect_timeout, "--connect-timeout", 1, 86400)),
        "token": secrets.token_urlsafe(32) if args.generate_token else None,
    }


def _scalar(value: Any) -> str:
    """``value`` as a YAML scalar: a bare integer, or a JSON-quoted string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(str(value))


def render(values: Mapping[str, Any], parts: Sequence[str] = PARTS) -> str:
    """The chosen documents as one YAML stream (the Secret only when a token was made).

    Raises:
        ValueError: For an unknown part.
    """
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part {unknown[0]!r}; the parts are {', '.join(PARTS)}")
    scalars = {key: _scalar(value) for key, value in values.items() if value is not None}
    documents = []
    for part in PARTS:
        if part not in parts or (part == "secret" and values.get("token") is None):
            continue
        template = string.Template((TEMPLATES / f"{part}.yaml").read_text())
        documents.append(template.substitute(scalars))
    return "---\n" + "---\n".join(documents)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Render the rlmesh env-server StatefulSet, its headless Service and an "
                    "evaluator Job as Kubernetes YAML (to stdout).")
    add = parser.add_argument
    add("--name", default="envs", help="StatefulSet and Service name (default %(default)s)")
    add("--namespace", default="default", help="namespace (default %(default)s)")
    add("--replicas", type=int, default=2, help="env server pods (default %(default)s)")
    add("--image", required=True, help="the image built from deploy/kubernetes/Dockerfile")
    add("--target", default="CartPole-v1", help="what each pod serves: an env id or "
        "module:attr (default %(default)s)")
    add("--num-envs", type=int, default=1,
        help="envs per pod, served as one vector env (default %(default)s)")
    add("--port", type=int, default=5555, help="the served port (default %(default)s)")
    add("--cpu", default="1", help="CPU request per env pod (default %(default)s)")
    add("--memory", default="512Mi",
        help="memory request and limit per env pod (default %(default)s)")
    add("--strict-spread", action="store_true",
        help="never put two env pods on one node (DoNotSchedule); default: spread if possible")
    add("--token-secret", help="the Secret holding the token under key 'token' "
        "(default NAME-token)")
    add("--generate-token", action="store_true",
        help="also render that Secret, with a fresh random token (keep the output private)")
    add("--episodes", type=int, default=100, help="the Job's episodes (default %(default)s)")
    add("--seed", type=int, default=0, help="episode i gets seed S+i (default %(default)s)")
    add("--connect-timeout", type=int, default=300,
        help="seconds the Job waits for pods to be ready (default %(default)s)")
    add("--evaluator-cpu", default="1", help="the Job's CPU request (default %(default)s)")
    add("--only", help=f"comma-separated parts to render, of: {', '.join(PARTS)}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the rendered manifests; 2 with a one-line error for a bad parameter."""
    args = _parser().parse_args(argv)
    try:
        parts = PARTS if args.only is None else [p.strip() for p in args.only.split(",")]
        text = render(parameters(args), parts)
    except ValueError as exc:
        print(f"render.py: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    if args.generate_token:
        print("render.py: the output holds a fresh token in a Secret: do not commit it",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
