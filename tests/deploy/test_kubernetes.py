"""deploy/kubernetes: the rendered manifests hold together, validate, and their commands work.

No cluster is needed. The manifests are rendered with parameters and parsed; their structure
is checked (selectors, the headless Service, ports, probe, Secret, spread, the Job's DNS
names) and, with kubernetes-validate installed (the optional group), validated against the
Kubernetes schemas. Then the commands the pods would run are run here, on loopback: the
image's entrypoint with the StatefulSet's arguments and environment serves, its readiness
probe passes with the Secret's token and fails with another, and the Job's ``rlmesh eval``
finds the pods by their DNS names (the lookup answered for the test) and plays every episode.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmesh.cli import build_parser
from rlmesh.cli import main as rlmesh_main
from rlmesh.scaleout.dns import StatefulSetDNS
from tests.support.deps import need
from tests.support.net import free_port, wait_until_listening
from tests.support.processes import stop_child

yaml = need("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
pytestmark = pytest.mark.timeout(120)


def _load_renderer() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_render", DEPLOY / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_renderer()


def rendered(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    """Run the renderer with ``args``; its documents by kind."""
    assert render.main(["--image", "registry.local/rlmesh-envs:1", *args]) == 0
    documents = [doc for doc in yaml.safe_load_all(capsys.readouterr().out) if doc]
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents), "one document of each kind"
    return by_kind


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["spec"]["template"]["spec"]["containers"]
    return only


def env_of(box: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in box["env"]}


PARAMS = ["--name", "cartpole", "--namespace", "rl-eval", "--replicas", "5",
          "--num-envs", "16", "--port", "6000", "--episodes", "40", "--generate-token"]


def test_manifests_fit_together(capsys: pytest.CaptureFixture[str]) -> None:
    docs = rendered(capsys, *PARAMS)
    assert set(docs) == {"Secret", "Service", "StatefulSet", "PodDisruptionBudget", "Job"}
    sts, svc, job = docs["StatefulSet"], docs["Service"], docs["Job"]
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"rl-eval"}
    # The StatefulSet's selector picks its own pods; the Service and PDB select the same pods.
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    for selector in (sts["spec"]["selector"]["matchLabels"], svc["spec"]["selector"],
                     docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not svc["spec"]["selector"].items() <= job_labels.items()  # the Job is no endpoint
    # A headless Service, governing the StatefulSet: that is what gives pods stable names.
    assert svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"] == "cartpole"
    assert sts["spec"]["replicas"] == 5
    # One port everywhere: served, exposed, probed and dialled.
    server = container(sts)
    env = env_of(server)
    (port,) = server["ports"]
    assert port["containerPort"] == 6000 and svc["spec"]["ports"][0]["port"] == 6000
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    assert env["RLMESH_ADDRESS"]["value"] == "0.0.0.0:6000"
    assert env["RLMESH_NUM_ENVS"]["value"] == "16"
    probe = server["readinessProbe"]["exec"]["command"]
    assert probe[:3] == ["rlmesh", "ping", "127.0.0.1:6000"]
    assert build_parser().parse_args(probe[1:]).address == "127.0.0.1:6000"
    assert server["livenessProbe"]["tcpSocket"]["port"] == port["name"]
    # Spread over nodes, and resources requested.
    spread = sts["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert "kubernetes.io/hostname" in {rule["topologyKey"] for rule in spread}
    assert all(rule["labelSelector"]["matchLabels"].items() <= pod_labels.items()
               for rule in spread)
    assert set(server["resources"]["requests"]) == {"cpu", "memory"}


def test_the_token_comes_only_from_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    docs = rendered(capsys, *PARAMS)
    secret = docs["Secret"]
    token = secret["stringData"]["token"]
    assert len(token) >= 40
    for kind in ("StatefulSet", "Job"):
        ref = env_of(container(docs[kind]))["RLMESH_TOKEN"]
        assert "value" not in ref
        assert ref["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"],
                                                    "key": "token"}
        assert token not in json.dumps(docs[kind])
    # A fresh token on every render; none at all (no Secret) unless asked.
    assert rendered(capsys, *PARAMS)["Secret"]["stringData"]["token"] != token
    plain = rendered(capsys, *PARAMS[:-1])
    assert "Secret" not in plain
    assert env_of(container(plain["StatefulSet"]))["RLMESH_TOKEN"]["valueFrom"] == \
        env_of(container(docs["StatefulSet"]))["RLMESH_TOKEN"]["valueFrom"]


def test_the_job_dials_every_pod_by_its_dns_name(capsys: pytest.CaptureFixture[str]) -> None:
    docs = rendered(capsys, *PARAMS)
    command = container(docs["Job"])["command"]
    assert command[:2] == ["rlmesh", "eval"]
    args = build_parser().parse_args(command[1:])
    assert (args.episodes, args.addresses, args.replicas) == (40, [], 5)
    names = StatefulSetDNS.parse(args.statefulset, args.replicas).addresses()
    sts, svc = docs["StatefulSet"]["metadata"], docs["Service"]["metadata"]
    assert names == [f"{sts['name']}-{i}.{svc['name']}.{svc['namespace']}.svc:6000"
                     for i in range(5)]
    assert docs["Job"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_parts_and_spread_policy(capsys: pytest.CaptureFixture[str]) -> None:
    docs = rendered(capsys, "--only", "service,statefulset", "--strict-spread")
    assert set(docs) == {"Service", "StatefulSet"}
    rules = docs["StatefulSet"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {r["topologyKey"]: r["whenUnsatisfiable"] for r in rules}[
        "kubernetes.io/hostname"] == "DoNotSchedule"


@pytest.mark.parametrize("args", [
    ["--name", "Envs"], ["--name", "e" * 53], ["--namespace", "rl_eval"], ["--replicas", "0"],
    ["--port", "70000"], ["--image", "bad image"], ["--target", "CartPole-v1\nkind: Pod"],
    ["--cpu", "lots"], ["--memory", "1 Gi"], ["--only", "ingress"], ["--num-envs", "0"],
])
def test_bad_parameters_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["--image", "registry.local/x:1", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("render.py: error: ")


def test_a_target_cannot_change_the_documents(capsys: pytest.CaptureFixture[str]) -> None:
    target = 'my_envs:make "v2" # {replicas: 99}'
    docs = rendered(capsys, "--target", target)
    assert container(docs["StatefulSet"])["args"] == [target]
    assert docs["StatefulSet"]["spec"]["replicas"] == 2


@pytest.mark.parametrize("args", [PARAMS, ["--strict-spread", "--generate-token"]])
def test_manifests_validate_against_the_kubernetes_schemas(
        args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    validate = need("kubernetes_validate")
    for doc in rendered(capsys, *args).values():
        validate.validate(doc, validate.latest_version(), strict=True)
    broken = rendered(capsys, *args)["StatefulSet"]
    container(broken)["readinessProbe"]["exec"]["commandz"] = ["x"]  # a typo the schema sees
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, validate.latest_version(), strict=True)


# ----------------------------------------------------------------------------------------
# The pods' commands, run here on loopback.


def image_command() -> list[str]:
    """The Dockerfile's ENTRYPOINT followed by its CMD (exec form: JSON arrays)."""
    text = (DEPLOY / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    return [*entry, *cmd]


def rlmesh_command(argv: list[str]) -> list[str]:
    """``argv`` (starting with ``rlmesh``) as this interpreter runs it."""
    assert argv[0] == "rlmesh"
    return [sys.executable, "-m", "rlmesh", *argv[1:]]


def test_the_image_entrypoint_parses() -> None:
    command = image_command()
    assert command[:3] == ["python", "-m", "rlmesh.serve"]
    out = subprocess.run([sys.executable, *command[1:3], "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "RLMESH_" in out and "TARGET" in out


@pytest.fixture
def pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, Any]]:
    """Pod 0 of a rendered StatefulSet, run as the image would run it, on loopback."""
    port = free_port()
    docs = rendered(capsys, "--name", "envs", "--namespace", "rl", "--replicas", "2",
                    "--port", str(port), "--episodes", "4", "--connect-timeout", "1",
                    "--generate-token")
    server = container(docs["StatefulSet"])
    env = dict(os.environ)
    for name, item in env_of(server).items():
        env[name] = item.get("value", "")
    env["RLMESH_TOKEN"] = docs["Secret"]["stringData"]["token"]  # what secretKeyRef gives
    assert env["RLMESH_ADDRESS"] == f"0.0.0.0:{port}"
    env["RLMESH_ADDRESS"] = f"127.0.0.1:{port}"  # a test listens on loopback only
    entry = image_command()[:3]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        child = subprocess.Popen([sys.executable, *entry[1:], *server["args"]], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until_listening(child, port, log)
        yield {"docs": docs, "env": env, "port": port, "server": server}
    finally:
        stop_child(child)


def test_the_readiness_probe_passes_with_the_secret_token_only(pod: dict[str, Any]) -> None:
    probe = rlmesh_command(pod["server"]["readinessProbe"]["exec"]["command"])
    ready = subprocess.run(probe, env=pod["env"], capture_output=True, text=True, timeout=60)
    assert ready.returncode == 0, ready.stderr
    assert "CartPole-v1" in ready.stdout
    wrong = {**pod["env"], "RLMESH_TOKEN": "not-the-token"}
    refused = subprocess.run(probe, env=wrong, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "CartPole-v1" not in refused.stdout


def test_the_job_finds_ready_pods_by_dns_and_plays(
        pod: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The cluster's DNS, answered here: pod 0 is published (at loopback), pod 1 is not ready.
    real = socket.getaddrinfo
    asked: list[str] = []

    def cluster_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".envs.rl.svc"):
            asked.append(host)
            if host == "envs-0.envs.rl.svc":
                return real("127.0.0.1", *args, **kwargs)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", cluster_dns)
    monkeypatch.setenv("RLMESH_TOKEN", pod["env"]["RLMESH_TOKEN"])
    command = container(pod["docs"]["Job"])["command"]
    json_out = tmp_path / "run.json"
    assert rlmesh_main([*command[1:], "--json", str(json_out)]) == 0
    run = json.loads(json_out.read_text())
    err = capsys.readouterr().err
    assert "envs-1.envs.rl.svc" in err and "do not resolve" in err
    assert {"envs-0.envs.rl.svc", "envs-1.envs.rl.svc"} <= set(asked)
    assert len(run["episodes"]) == 4
    assert {ep["endpoint"] for ep in run["episodes"]} == {f"envs-0.envs.rl.svc:{pod['port']}"}
