"""The Kubernetes manifests: every overlay builds with Debian's kubectl, validates, and configures every setting.

``kubectl kustomize`` comes from Debian's ``kubernetes-client`` (kubectl 1.20, kustomize v2.0.3): the
manifests stay within what that version understands, and a newer kubectl, where one is installed, must
build the same objects. Built-in kinds are checked against the Kubernetes OpenAPI schemas
(``kubernetes-validate``, strict: an unknown field fails); the operators' kinds against the small schemas
below, which list the fields of the Strimzi, CloudNativePG, Prometheus Operator and OpenTelemetry Operator
CRDs that these manifests use (checked against each project's CRD reference), and reuse the Kubernetes
definitions for embedded core types (resources, affinity, security contexts).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from motcua import registry
from motcua.registry import SERVICES
from shared.settings import ServiceSettings
from tests.support.debian import apt_get, ensure_package_lists, unpacked_package

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
GRAFANA = ROOT / "deploy" / "grafana"
OVERLAYS = ("local", "production")
# Kubernetes versions the built-in kinds must validate against: the oldest we support and the newest known.
K8S_VERSIONS = ("1.28", kubernetes_validate.utils.latest_version())
LATEST_SCHEMAS = f"v{kubernetes_validate.utils.latest_version()}-local-strict"
PRODUCERS = ("intake", "workflow", "digitization", "payments")  # DESIGN.md: one topic per producing service
# Settings that another one stands in for: the key is mounted as a file, so JWT_PUBLIC_KEY stays unset.
ALTERNATIVES = {"jwt_public_key": "jwt_public_key_file"}
# Settings whose value is a secret: they must come from a Secret, never from a ConfigMap.
SECRET_FIELD = re.compile(r"(secret|password|passphrase|token|database_url|private_key)(?!.*_(file|path)$)")
# Services that reach outside the cluster, why, and on which ports.
OUTBOUND = {
    "intake": ("the provincial portal (status push-back)", [443]),
    "digitization": ("the S3-compatible object store", [443]),
    "workflow": ("the SMS provider's HTTPS API and the SMTP relay (submission)", [443, 587]),
    "reporting": ("the province's LGSP in front of the national portal DVCQG (sync)", [443]),
}
# Connections reserved beside the services' pools: migration Jobs, replication, the operator, superusers.
PG_RESERVED_CONNECTIONS = 20

# The content hash kustomize appends to a generated name: ten letters and digits, no vowels.
HASH = "[bcdfghjklmnpqrstvwxz2456789]{10}"

pytestmark = pytest.mark.timeout(900)  # the first test may install kubernetes-client


# --- kubectl from Debian's kubernetes-client -------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def _dpkg_installed(package: str) -> bool:
    result = _run(["dpkg-query", "-W", "-f=${Status}", package])
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


@functools.cache
def debian_kubectl() -> Path:
    """Debian's kubectl: the installed package, or the package unpacked beside the venv.

    When another package already owns /usr/bin/kubectl (Google Cloud SDK's ``kubectl`` on some images),
    dpkg would refuse to install over it, so the ``.deb`` is unpacked into the venv instead of replacing it.
    """
    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        pytest.fail("these tests need Debian's kubernetes-client (apt-get install kubernetes-client)")
    if _dpkg_installed("kubernetes-client"):
        return Path("/usr/bin/kubectl")
    unpacked = Path(sys.prefix) / "kubernetes-client"
    if not unpacked.is_dir():
        if os.geteuid() != 0:
            pytest.fail("Debian's kubernetes-client is missing: run 'sudo apt-get install -y kubernetes-client'")
        if not (Path("/usr/bin/kubectl").exists() or Path("/usr/bin/kubectl").is_symlink()):
            ensure_package_lists("kubernetes-client")
            install = apt_get("install", "-y", "--no-install-recommends", "kubernetes-client")
            assert install.returncode == 0, f"apt-get install kubernetes-client failed:\n{install.stdout}\n{install.stderr}"
            return Path("/usr/bin/kubectl")
    return unpacked_package("kubernetes-client", "kubernetes-client") / "usr" / "bin" / "kubectl"


def kustomize(kubectl: Path, directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from a directory."""
    result = _run([str(kubectl), "kustomize", str(directory)])
    assert result.returncode == 0, f"{kubectl} kustomize {directory.relative_to(ROOT)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def built(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(debian_kubectl(), K8S / "overlays" / overlay))


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def objects(overlay: str) -> tuple[dict[str, Any], ...]:
    return built(overlay)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def config_map(objects: tuple[dict[str, Any], ...], name: str) -> dict[str, str]:
    """A generated ConfigMap's data, found by its name without the content hash."""
    matches = [o for o in of_kind(objects, "ConfigMap") if re.fullmatch(rf"{name}-{HASH}", o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one ConfigMap {name}-<hash>, found {len(matches)}"
    return matches[0].get("data", {})


def config_maps_by_name(objects: tuple[dict[str, Any], ...]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in of_kind(objects, "ConfigMap")}


def settings_class(service: str) -> type[ServiceSettings]:
    return registry.settings_class(service)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(obj)["containers"]
    return only


def pod_environment(objects: tuple[dict[str, Any], ...], obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The variables a pod gets: literal ones (ConfigMaps, ``value``) and Secret references by name."""
    maps = config_maps_by_name(objects)
    literal: dict[str, str] = {}
    secret_refs: dict[str, dict[str, Any]] = {}
    spec = container(obj)
    for source in spec.get("envFrom", []):
        assert "configMapRef" in source, f"{obj['metadata']['name']}: envFrom only from ConfigMaps (secrets by key)"
        literal.update(maps[source["configMapRef"]["name"]])
    for var in spec.get("env", []):
        if "value" in var:
            literal[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            secret_refs[var["name"]] = var["valueFrom"]["secretKeyRef"]
        else:
            raise AssertionError(f"{obj['metadata']['name']}: unexpected env source {var}")
    return literal, secret_refs


def env_names(service: str, field: str) -> set[str]:
    """The variables that set one field of a service's settings (the prefixed one wins)."""
    return {field.upper(), f"{service.upper()}_{field.upper()}"}


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def server(objects: tuple[dict[str, Any], ...], service: str) -> dict[str, Any]:
    return named(objects, "Deployment", f"motcua-{service}")


def migration(objects: tuple[dict[str, Any], ...], service: str) -> dict[str, Any]:
    return named(objects, "Job", f"motcua-{service}-migrate")


# --- building -------------------------------------------------------------------------------------------


def test_every_overlay_builds_with_debians_kubectl(objects: tuple[dict[str, Any], ...]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"NetworkPolicy", "Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "ServiceMonitor"} <= kinds
    assert {"OpenTelemetryCollector", "Namespace"} <= kinds
    assert all(o["metadata"].get("namespace") == "motcua" for o in objects if o["kind"] != "Namespace")
    keys = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "an object is built twice"


def test_the_base_builds_on_its_own() -> None:
    assert kustomize(debian_kubectl(), K8S / "base")


def _normalized(objects: list[dict[str, Any]]) -> str:
    """Objects in a form two kustomize versions agree on: no content hashes, no empty metadata maps, and
    named items (containers, volumes, ports) in name order, where versions merge patches in different orders."""

    def named_in_order(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: named_in_order(v) for k, v in node.items()}
        if isinstance(node, list):
            items = [named_in_order(v) for v in node]
            if items and all(isinstance(i, dict) and "name" in i for i in items):
                items.sort(key=lambda i: str(i["name"]))
            return items
        return node

    for obj in objects:
        for key in ("labels", "annotations"):
            if obj["metadata"].get(key) == {}:
                del obj["metadata"][key]
    objects = [named_in_order(o) for o in objects]
    text = yaml.safe_dump(sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"])), sort_keys=True)
    return re.sub(rf"\b(motcua-[a-z0-9-]+)-{HASH}\b", r"\1-HASH", text)


def test_a_newer_kubectl_builds_the_same_objects(overlay: str) -> None:
    other = shutil.which("kubectl")
    if other is None or Path(other).resolve() == debian_kubectl().resolve():
        pytest.skip("no kubectl besides Debian's on PATH")
    if _run([other, "kustomize", "--help"]).returncode != 0:
        pytest.skip(f"{other} has no kustomize")
    assert _normalized(kustomize(Path(other), K8S / "overlays" / overlay)) == _normalized(list(built(overlay)))


# --- schemas --------------------------------------------------------------------------------------------


@functools.cache
def kubernetes_problem(text: str, version: str) -> str | None:
    """What the Kubernetes schema of that version says against an object (cached: overlays share objects)."""
    try:
        kubernetes_validate.validate(json.loads(text), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{exc.message} at {list(exc.path)}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"{exc.message}: an operator's kind needs a schema in CRD_KINDS"
    return None


def test_built_in_kinds_validate_against_the_kubernetes_schemas(objects: tuple[dict[str, Any], ...]) -> None:
    checked = 0
    for obj in objects:
        if not built_in(obj):
            continue
        for version in K8S_VERSIONS:
            problem = kubernetes_problem(json.dumps(obj, sort_keys=True), version)
            assert problem is None, f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): {problem}"
        checked += 1
    assert checked > 40


def test_operator_kinds_use_only_fields_their_crds_define(objects: tuple[dict[str, Any], ...]) -> None:
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if built_in(obj):
            continue
        assert key in CRD_KINDS, f"{key} has no schema here: add the fields it uses to CRD_KINDS"
        errors = sorted(crd_validator(key).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{obj['kind']} {obj['metadata']['name']}: " + "; ".join(
            f"{e.message} at {'.'.join(map(str, e.path))}" for e in errors[:5]
        )


def test_the_crd_schemas_catch_a_misspelt_field() -> None:
    topic = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "t", "labels": {"strimzi.io/cluster": "motcua"}},
        "spec": {"partitons": 3, "replicas": 3},
    }
    assert any("partitons" in e.message for e in crd_validator(("kafka.strimzi.io/v1beta2", "KafkaTopic")).iter_errors(topic))


# --- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_a_service_reads_is_set(objects: tuple[dict[str, Any], ...], service: str) -> None:
    literal, secrets = pod_environment(objects, server(objects, service))
    provided = set(literal) | set(secrets)
    fields = settings_class(service).model_fields
    missing = [
        field
        for field in fields
        if not env_names(service, field) & provided and not env_names(service, ALTERNATIVES.get(field, field)) & provided
    ]
    assert not missing, (
        f"{service} reads settings that its Deployment does not set: "
        + ", ".join(f"{service.upper()}_{f.upper()}" for f in missing)
        + f" (add them to deploy/k8s/base/{service}/config.env, base/common.env, or a secretKeyRef in base/{service}/deployment.yaml)"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_no_variable_is_set_that_no_setting_reads(objects: tuple[dict[str, Any], ...], service: str) -> None:
    literal, secrets = pod_environment(objects, server(objects, service))
    known = {name for field in settings_class(service).model_fields for name in env_names(service, field)}
    assert not (set(literal) | set(secrets)) - known, "a misspelt or stale variable"


@pytest.mark.parametrize("service", SERVICES)
def test_secret_settings_come_from_secrets(objects: tuple[dict[str, Any], ...], service: str) -> None:
    literal, secrets = pod_environment(objects, server(objects, service))
    for field in settings_class(service).model_fields:
        if SECRET_FIELD.search(field):
            assert not env_names(service, field) & set(literal), f"{field} is a secret: reference a Secret"
    for name, ref in secrets.items():
        assert ref["name"].startswith("motcua-") and ref["key"], name


@pytest.mark.parametrize("service", SERVICES)
def test_the_migration_job_gets_the_services_environment(objects: tuple[dict[str, Any], ...], service: str) -> None:
    deployment, job = server(objects, service), migration(objects, service)
    assert pod_environment(objects, job) == pod_environment(objects, deployment)
    assert container(job)["args"] == ["migrate", service]
    assert container(job)["image"] == container(deployment)["image"]
    assert pod_spec(job)["restartPolicy"] == "Never"


@pytest.mark.parametrize("service", SERVICES)
def test_the_settings_parse_as_the_pod_would_see_them(
    objects: tuple[dict[str, Any], ...], overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value in the ConfigMaps has the right type, and the validators accept them (production too)."""
    deployment = server(objects, service)
    literal, secrets = pod_environment(objects, deployment)
    cls = settings_class(service)
    every_name = {name for field in cls.model_fields for name in env_names(service, field)}
    for name in list(os.environ):
        if name.upper() in every_name:
            monkeypatch.delenv(name)
    for name, value in literal.items():
        monkeypatch.setenv(name, value)
    for name in secrets:
        field = name.lower().removeprefix(f"{service}_")
        if field == "database_url":
            fake = "postgresql://u:p@motcua-pg-rw:5432/db"
        elif typing.get_origin(cls.model_fields[field].annotation) is dict:
            fake = json.dumps({"bank": "s" * 48})  # e.g. one secret per callback provider
        else:
            fake = "s" * 48
        monkeypatch.setenv(name, fake)
    settings = cls()
    port = next(p for p in container(deployment)["ports"] if p["name"] == "http")["containerPort"]
    assert (settings.host, settings.port) == ("0.0.0.0", port)
    assert settings.jwt_public_key_file is not None
    mount = next(m for m in container(deployment)["volumeMounts"] if m["name"] == "jwt")["mountPath"]
    assert str(settings.jwt_public_key_file).startswith(mount + "/")
    assert settings.database_url.endswith("/db"), "the service-prefixed DATABASE_URL from the Secret wins"
    if overlay == "production":
        assert settings.environment == "production"
        assert settings.kafka_enable_idempotence, "Apache Kafka grants idempotent producers"


def test_kafka_and_telemetry_addresses_match_the_clusters(objects: tuple[dict[str, Any], ...]) -> None:
    common = config_map(objects, "motcua-common")
    (kafka,) = of_kind(objects, "Kafka")
    listener = next(item for item in kafka["spec"]["kafka"]["listeners"] if not item["tls"])
    assert common["KAFKA_BOOTSTRAP_SERVERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    (collector,) = of_kind(objects, "OpenTelemetryCollector")
    http = collector["spec"]["config"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert common["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{collector['metadata']['name']}-collector:{http.rsplit(':', 1)[1]}"


# --- the services' workloads ----------------------------------------------------------------------------


def built_in(obj: dict[str, Any]) -> bool:
    """A kind of Kubernetes itself (core, apps/v1, networking.k8s.io/v1 …), not an operator's."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def workloads(objects: tuple[dict[str, Any], ...]) -> Iterator[dict[str, Any]]:
    yield from (o for o in objects if o["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"))


def test_every_pod_runs_as_non_root_on_a_read_only_root(objects: tuple[dict[str, Any], ...]) -> None:
    for obj in workloads(objects):
        spec, name = pod_spec(obj), obj["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("enableServiceLinks") is False, f"{name}: service links would set e.g. INTAKE_PORT=tcp://…"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            security = c["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
            tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
            assert "emptyDir" in volumes[tmp["name"]], f"{name}: /tmp is a writable emptyDir"


def test_the_image_user_is_the_pods_user(objects: tuple[dict[str, Any], ...]) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert user, "the Dockerfile sets a numeric USER"
    for service in SERVICES:
        for obj in (server(objects, service), migration(objects, service)):
            context = pod_spec(obj)["securityContext"]
            assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user.groups()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_by_its_argument_with_probes(objects: tuple[dict[str, Any], ...], service: str) -> None:
    c = container(server(objects, service))
    assert c["args"] == ["serve", service]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_one_image_for_every_service_and_a_real_tag_in_production(objects: tuple[dict[str, Any], ...], overlay: str) -> None:
    images = {container(o)["image"] for s in SERVICES for o in (server(objects, s), migration(objects, s))}
    assert len(images) == 1
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name and tag
    if overlay == "production":
        assert tag not in ("latest", "dev") and "/" in name, image


@pytest.mark.parametrize("service", SERVICES)
def test_service_hpa_pdb_and_servicemonitor_reach_the_pods(objects: tuple[dict[str, Any], ...], service: str) -> None:
    deployment = server(objects, service)
    labels = pod_labels(deployment)
    assert selects(deployment["spec"]["selector"], labels)
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"

    svc = named(objects, "Service", f"motcua-{service}")
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    port_names = {p["name"] for p in container(deployment)["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= port_names

    hpa = named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    pdb = named(objects, "PodDisruptionBudget", f"motcua-{service}")
    assert selects(pdb["spec"]["selector"], labels)

    monitor = named(objects, "ServiceMonitor", f"motcua-{service}")
    assert selects(monitor["spec"]["selector"], svc["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]} and endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True, "keep the metrics' own service label"


def test_local_runs_one_replica_of_each_with_small_resources() -> None:
    objects = built("local")
    for service in SERVICES:
        hpa = named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")
        assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 1
        assert _bytes(container(server(objects, service))["resources"]["limits"]["memory"]) <= 512 * 2**20
    assert named(objects, "KafkaNodePool", "dual-role")["spec"]["replicas"] == 1
    assert named(objects, "Cluster", "motcua-pg")["spec"]["instances"] == 1
    assert config_map(objects, "motcua-common")["ENVIRONMENT"] == "development"


def test_production_spreads_replicas_and_makes_producers_idempotent() -> None:
    objects = built("production")
    assert config_map(objects, "motcua-common")["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    for service in SERVICES:
        deployment = server(objects, service)
        assert named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")["spec"]["minReplicas"] >= 2
        terms = pod_spec(deployment)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert any(
            t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
            and selects(t["podAffinityTerm"]["labelSelector"], pod_labels(deployment))
            for t in terms
        )
        assert _bytes(container(deployment)["resources"]["requests"]["memory"]) >= 256 * 2**20


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)?", quantity).groups()  # type: ignore[union-attr]
    return int(number) * {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[unit]


# --- Kafka, Postgres, telemetry -------------------------------------------------------------------------


def test_kafka_runs_in_kraft_mode_with_a_topic_per_producer(objects: tuple[dict[str, Any], ...], overlay: str) -> None:
    (kafka,) = of_kind(objects, "Kafka")
    assert kafka["metadata"]["annotations"] == {"strimzi.io/kraft": "enabled", "strimzi.io/node-pools": "enabled"}
    pools = of_kind(objects, "KafkaNodePool")
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for p in pools)
    assert {"controller", "broker"} <= {role for p in pools for role in p["spec"]["roles"]}
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False

    common = config_map(objects, "motcua-common")
    settings = ServiceSettings.model_construct(kafka_topic_namespace=common["KAFKA_TOPIC_NAMESPACE"])
    settings_topics = {settings.topic(p) for p in PRODUCERS}
    topics = of_kind(objects, "KafkaTopic")
    assert {t["spec"]["topicName"] for t in topics} == settings_topics
    for topic in topics:
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert spec["partitions"] == int(common["KAFKA_TOPIC_PARTITIONS"]), "services and topics agree on partitions"
        assert 1 <= spec["config"]["min.insync.replicas"] <= spec["replicas"] <= brokers
        assert spec["config"]["retention.ms"] >= 24 * 3600 * 1000
    if overlay == "production":
        assert brokers == 3
        assert all(t["spec"]["replicas"] == 3 and t["spec"]["config"]["min.insync.replicas"] == 2 for t in topics)
        for service in SERVICES:
            hpa = named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")
            assert hpa["spec"]["maxReplicas"] <= int(common["KAFKA_TOPIC_PARTITIONS"]), "extra consumers would idle"


def test_postgres_has_a_database_and_role_per_service(objects: tuple[dict[str, Any], ...], overlay: str) -> None:
    (cluster,) = of_kind(objects, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind(objects, "Database")}
    for service in SERVICES:
        database = databases[f"motcua_{service}"]
        assert database["cluster"]["name"] == cluster["metadata"]["name"]
        role = roles[database["owner"]]
        assert role["login"] is True and role["ensure"] == "present"
        _, secrets = pod_environment(objects, server(objects, service))
        url = secrets[f"{service.upper()}_DATABASE_URL"]
        assert url["name"] == role["passwordSecret"]["name"], "one Secret holds the role's password and the URL"
    if overlay == "production":
        assert cluster["spec"]["instances"] == 2, "one primary and one replica"
        backup = cluster["spec"]["backup"]
        assert backup["barmanObjectStore"]["destinationPath"].startswith("s3://")
        credentials = backup["barmanObjectStore"]["s3Credentials"]
        assert credentials["accessKeyId"]["name"] == credentials["secretAccessKey"]["name"]
        (scheduled,) = of_kind(objects, "ScheduledBackup")
        assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"] and not scheduled["spec"].get("suspend")
    else:
        assert "backup" not in cluster["spec"]
        assert all(s["spec"]["suspend"] for s in of_kind(objects, "ScheduledBackup"))


def test_every_replicas_pool_fits_in_max_connections(objects: tuple[dict[str, Any], ...]) -> None:
    (cluster,) = of_kind(objects, "Cluster")
    limit = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    needed = PG_RESERVED_CONNECTIONS
    for service in SERVICES:
        literal, _ = pod_environment(objects, server(objects, service))
        pool = int(literal.get(f"{service.upper()}_DATABASE_POOL_SIZE", literal.get("DATABASE_POOL_SIZE", 10)))
        replicas = named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")["spec"]["maxReplicas"]
        needed += replicas * 2 * pool  # the pool and as many overflow connections
    assert needed <= limit, f"{needed} connections at full scale, max_connections is {limit}"


def test_the_collector_pipelines_use_defined_components(objects: tuple[dict[str, Any], ...]) -> None:
    (collector,) = of_kind(objects, "OpenTelemetryCollector")
    config = collector["spec"]["config"]
    for name, pipeline in config["service"]["pipelines"].items():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(part, [])) <= set(config.get(part, {})), f"{name}.{part}"


# --- network policies -----------------------------------------------------------------------------------


def policies_for(objects: tuple[dict[str, Any], ...], labels: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [
        p for p in of_kind(objects, "NetworkPolicy")
        if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]


def test_only_what_must_talk_can_talk(objects: tuple[dict[str, Any], ...]) -> None:
    (pg,) = of_kind(objects, "Cluster")
    (kafka,) = of_kind(objects, "Kafka")
    (collector,) = of_kind(objects, "OpenTelemetryCollector")
    postgres = {"cnpg.io/cluster": pg["metadata"]["name"]}
    brokers = {"strimzi.io/cluster": kafka["metadata"]["name"], "strimzi.io/kind": "Kafka"}
    otel = {"app.kubernetes.io/component": "opentelemetry-collector", "app.kubernetes.io/name": f"{collector['metadata']['name']}-collector"}
    dns = {"k8s-app": "kube-dns"}
    servers = {s: pod_labels(server(objects, s)) for s in SERVICES}

    for service, labels in servers.items():
        ingress = policies_for(objects, labels, "Ingress")
        assert ingress, f"{service}: no ingress policy"
        for policy in ingress:
            for rule in policy["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    assert "namespaceSelector" in peer and "podSelector" not in peer, (
                        f"{policy['metadata']['name']}: HTTP only from the ingress controller and Prometheus namespaces"
                    )
        egress = policies_for(objects, labels, "Egress")
        assert egress, f"{service}: no egress policy"
        for policy in egress:
            for rule in policy["spec"]["egress"]:
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        assert service in OUTBOUND and [p["port"] for p in rule["ports"]] == OUTBOUND[service][1], OUTBOUND
                        continue
                    targets = peer["podSelector"]["matchLabels"]
                    assert targets in (postgres, brokers, otel, dns), f"{policy['metadata']['name']}: egress to {targets}"
                    assert not any(selects(peer["podSelector"], other) for other in servers.values()), "no service-to-service HTTP"
        reachable = [peer["podSelector"]["matchLabels"] for p in egress for r in p["spec"]["egress"] for peer in r["to"] if "podSelector" in peer]
        assert all(target in reachable for target in (postgres, brokers, otel, dns)), service

    # The notification channels workflow is configured with are ports its egress policy opens.
    literal, _ = pod_environment(objects, server(objects, "workflow"))
    sms_port = urlsplit(literal["WORKFLOW_SMS_PROVIDER_URL"]).port or 443
    assert {int(literal["WORKFLOW_SMTP_PORT"]), sms_port} <= set(OUTBOUND["workflow"][1])

    for service in SERVICES:
        labels = pod_labels(migration(objects, service))
        egress = policies_for(objects, labels, "Egress")
        reachable = [peer["podSelector"]["matchLabels"] for p in egress for r in p["spec"]["egress"] for peer in r["to"]]
        assert egress and all(target in (postgres, dns) for target in reachable), "migrations reach only Postgres"
        assert policies_for(objects, labels, "Ingress"), "nothing connects to a migration Job"

    peers = kafka["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    assert all(any(selects(p["podSelector"], labels) for p in peers) for labels in servers.values())


# --- secrets --------------------------------------------------------------------------------------------


def referenced_secrets(objects: tuple[dict[str, Any], ...]) -> set[str]:
    names: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key in ("secretKeyRef", "passwordSecret", "accessKeyId", "secretAccessKey") and "name" in node:
                names.add(node["name"])
            if "secretName" in node:
                names.add(node["secretName"])
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(list(objects))
    return names


def test_secrets_are_referenced_and_never_committed(objects: tuple[dict[str, Any], ...]) -> None:
    assert not of_kind(objects, "Secret")
    for path in (ROOT / "deploy").rglob("*"):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".json", ".env"):
            assert not re.search(r"^kind:\s*Secret\s*$", path.read_text(), re.M), path
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying to Kubernetes"):]
    missing = sorted(name for name in referenced_secrets(objects) if f"`{name}`" not in section)
    assert not missing, f"README 'Deploying to Kubernetes' must say how to create {missing}"


# --- Grafana --------------------------------------------------------------------------------------------


def metric_names() -> set[str]:
    """Every series name the code exposes: prometheus_client metrics declared in shared/ and services/."""
    names: set[str] = set()
    declaration = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        for kind, name in declaration.findall(path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {
                "Counter": {f"{base}_total", f"{base}_created"},
                "Gauge": {base},
                "Histogram": {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"},
                "Summary": {base, f"{base}_sum", f"{base}_count", f"{base}_created"},
            }[kind]
    return names


PROMQL_WORDS = {
    "sum", "by", "without", "rate", "irate", "increase", "histogram_quantile", "max", "min", "avg", "count", "topk",
    "bottomk", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "label_values",
    "absent", "clamp_min", "clamp_max", "delta", "deriv", "time", "vector", "scalar", "le", "bool",
}


def test_grafana_provisions_every_dashboard_and_they_use_existing_metrics() -> None:
    kustomization = yaml.safe_load((GRAFANA / "kustomization.yaml").read_text())
    files = {f for g in kustomization["configMapGenerator"] for f in g.get("files", [])}
    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert dashboards
    assert {f"dashboards/{d.name}" for d in dashboards} <= files, "add every dashboard to deploy/grafana/kustomization.yaml"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "motcua.yaml").read_text())["providers"]
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())["datasources"]
    (grafana,) = [o for o in built("production") if o["kind"] == "Deployment" and o["metadata"]["name"] == "motcua-grafana"]
    mounts = {m["mountPath"] for m in container(grafana)["volumeMounts"]}
    assert {p["options"]["path"] for p in providers} <= mounts

    known = metric_names() | {"up"}
    uids = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
        for panel in panels:
            for target in panel["targets"]:
                expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", target["expr"])
                for word in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr):
                    if word in PROMQL_WORDS or not (word.startswith("motcua_") or word == "up"):
                        continue
                    assert word in known, f"{path.name} '{panel['title']}' uses {word}, which no code exposes"
    assert any(d["type"] == "prometheus" and d["url"] == "${PROMETHEUS_URL}" for d in datasources)
    assert any(e.get("name") == "PROMETHEUS_URL" for e in container(grafana)["env"])


# --- the image ------------------------------------------------------------------------------------------


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes (enough for the patterns we use)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex, path) or re.match(regex + "/", path + "/"):
            ignored = not negate
    return ignored


def test_the_dockerfile_builds_a_slim_non_root_image_of_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", dockerfile, re.M)
    assert len(stages) >= 2, "multi-stage"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.M)
    assert base and "slim" in base.group(1)
    final = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert re.search(r"^USER \d+:\d+$", final, re.M) and not re.search(r"^USER (0|root)\b", final, re.M)
    assert 'ENTRYPOINT ["motcua"]' in final and re.search(r'^CMD \["serve", "(\w+)"\]', final, re.M)
    assert "EXPOSE 8080" in final
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not _dockerignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    assert _dockerignored(".venv", patterns) and _dockerignored("tests", patterns) and _dockerignored(".git", patterns)
    assert _dockerignored("shared/__pycache__", patterns) and not _dockerignored("motcua/cli.py", patterns)
    # Every service the image can run is deployed, and nothing else.
    assert {d.name for d in (K8S / "base").iterdir() if (d / "deployment.yaml").exists()} == set(SERVICES)


# --- the schemas of the operators' kinds ----------------------------------------------------------------
# Fields these manifests use (and a few neighbours), from the CRD references of Strimzi 0.45+ (v1beta2),
# CloudNativePG 1.25+, Prometheus Operator 0.7x and the OpenTelemetry Operator 0.9x+ (v1beta1).
# additionalProperties is false wherever the CRD defines the object's fields, so a misspelt or unknown
# field fails here rather than at `kubectl apply`; free-form maps (Kafka config, collector config) are open.

K8S_DEFS = "https://kubernetes.io/api/_definitions.json#/$defs/"


def core(name: str) -> dict[str, Any]:
    """A Kubernetes core type, validated by kubernetes-validate's own definitions."""
    return {"$ref": K8S_DEFS + name}


def obj(properties: dict[str, Any] | None = None, required: tuple[str, ...] = (), *, open_: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}, "additionalProperties": open_}
    if required:
        schema["required"] = list(required)
    return schema


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
QUANTITY = {"type": ["string", "integer"]}
FREE = {"type": "object"}
RESOURCES = core("io.k8s.api.core.v1.ResourceRequirements")
AFFINITY = core("io.k8s.api.core.v1.Affinity")
METADATA = core("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
SECRET_KEY = obj({"name": STR, "key": STR}, ("name", "key"))
LOCAL_REF = obj({"name": STR}, ("name",))


def kind(api_version: str, kind_name: str, spec: dict[str, Any]) -> tuple[tuple[str, str], dict[str, Any]]:
    return (api_version, kind_name), obj(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind_name}, "metadata": METADATA, "spec": spec},
        ("apiVersion", "kind", "metadata", "spec"),
    )


STRIMZI_POD_TEMPLATE = obj({
    "metadata": obj({"labels": FREE, "annotations": FREE}),
    "affinity": AFFINITY,
    "tolerations": arr(core("io.k8s.api.core.v1.Toleration")),
    "topologySpreadConstraints": arr(core("io.k8s.api.core.v1.TopologySpreadConstraint")),
    "securityContext": core("io.k8s.api.core.v1.PodSecurityContext"),
    "priorityClassName": STR,
    "terminationGracePeriodSeconds": INT,
})
STRIMZI_VOLUME = obj(
    {
        "id": INT, "type": enum("persistent-claim", "ephemeral"), "size": STR, "class": STR, "deleteClaim": BOOL,
        "kraftMetadata": enum("shared"), "selector": FREE, "sizeLimit": STR,
    },
    ("type",),
)
CNPG_COMPRESSION = enum("bzip2", "gzip", "lz4", "snappy", "xz", "zstd")
OTEL_PIPELINE = obj({"receivers": arr(STR), "processors": arr(STR), "exporters": arr(STR)}, ("receivers", "exporters"))

CRD_KINDS: dict[tuple[str, str], dict[str, Any]] = dict([
    kind("kafka.strimzi.io/v1beta2", "Kafka", obj({
        "kafka": obj({
            "version": STR,
            "metadataVersion": STR,
            "listeners": arr(obj(
                {
                    "name": {"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
                    "port": {"type": "integer", "minimum": 9092},
                    "type": enum("internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"),
                    "tls": BOOL,
                    "authentication": FREE,
                    "configuration": FREE,
                    "networkPolicyPeers": arr(core("io.k8s.api.networking.v1.NetworkPolicyPeer")),
                },
                ("name", "port", "type", "tls"),
            )),
            "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
            "authorization": FREE, "rack": FREE, "template": FREE, "metricsConfig": FREE, "logging": FREE,
        }, ("listeners",)),
        "entityOperator": obj({
            "topicOperator": obj({"resources": RESOURCES, "watchedNamespace": STR, "reconciliationIntervalMs": INT}),
            "userOperator": obj({"resources": RESOURCES, "watchedNamespace": STR}),
            "template": FREE,
        }),
        "cruiseControl": FREE, "kafkaExporter": FREE,
    }, ("kafka",))),
    kind("kafka.strimzi.io/v1beta2", "KafkaNodePool", obj({
        "replicas": {"type": "integer", "minimum": 0},
        "roles": arr(enum("controller", "broker")),
        "storage": obj({"type": enum("jbod", "persistent-claim", "ephemeral"), "volumes": arr(STRIMZI_VOLUME), "size": STR, "class": STR, "deleteClaim": BOOL}, ("type",)),
        "resources": RESOURCES,
        "jvmOptions": obj({"-Xms": STR, "-Xmx": STR, "-XX": FREE, "gcLoggingEnabled": BOOL, "javaSystemProperties": arr(FREE)}),
        "template": obj({"pod": STRIMZI_POD_TEMPLATE, "podSet": FREE, "perPodService": FREE, "persistentVolumeClaim": FREE, "kafkaContainer": FREE, "initContainer": FREE}),
    }, ("replicas", "roles", "storage"))),
    kind("kafka.strimzi.io/v1beta2", "KafkaTopic", obj({
        "topicName": STR,
        "partitions": {"type": "integer", "minimum": 1},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
        "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
    })),
    kind("postgresql.cnpg.io/v1", "Cluster", obj({
        "description": STR,
        "instances": {"type": "integer", "minimum": 1},
        "imageName": STR,
        "primaryUpdateStrategy": enum("unsupervised", "supervised"),
        "primaryUpdateMethod": enum("switchover", "restart"),
        "enableSuperuserAccess": BOOL,
        "storage": obj({"size": STR, "storageClass": STR, "resizeInUseVolumes": BOOL, "pvcTemplate": FREE}),
        "walStorage": obj({"size": STR, "storageClass": STR}),
        "resources": RESOURCES,
        "postgresql": obj({
            "parameters": {"type": "object", "additionalProperties": STR},  # strings only: quote numbers
            "pg_hba": arr(STR), "shared_preload_libraries": arr(STR),
        }),
        "affinity": obj({
            "enablePodAntiAffinity": BOOL, "topologyKey": STR, "podAntiAffinityType": enum("preferred", "required"),
            "nodeSelector": FREE, "tolerations": arr(core("io.k8s.api.core.v1.Toleration")),
            "additionalPodAntiAffinity": FREE, "additionalPodAffinity": FREE, "nodeAffinity": FREE,
        }),
        "monitoring": obj({"enablePodMonitor": BOOL, "customQueriesConfigMap": arr(SECRET_KEY), "disableDefaultQueries": BOOL}),
        "managed": obj({"roles": arr(obj(
            {
                "name": STR, "ensure": enum("present", "absent"), "comment": STR, "login": BOOL, "superuser": BOOL,
                "createdb": BOOL, "createrole": BOOL, "inherit": BOOL, "replication": BOOL, "bypassrls": BOOL,
                "connectionLimit": INT, "validUntil": STR, "inRoles": arr(STR), "passwordSecret": LOCAL_REF,
                "disablePassword": BOOL,
            },
            ("name",),
        ))}),
        "backup": obj({
            "retentionPolicy": {"type": "string", "pattern": "^[1-9][0-9]*[dwm]$"},
            "target": enum("primary", "prefer-standby"),
            "barmanObjectStore": obj(
                {
                    "destinationPath": {"type": "string", "pattern": "^(s3|gs|https?)://"},
                    "endpointURL": STR, "endpointCA": SECRET_KEY, "serverName": STR,
                    "s3Credentials": obj({
                        "accessKeyId": SECRET_KEY, "secretAccessKey": SECRET_KEY, "region": SECRET_KEY,
                        "sessionToken": SECRET_KEY, "inheritFromIAMRole": BOOL,
                    }),
                    "wal": obj({"compression": CNPG_COMPRESSION, "encryption": enum("AES256", "aws:kms"), "maxParallel": INT}),
                    "data": obj({"compression": CNPG_COMPRESSION, "encryption": enum("AES256", "aws:kms"), "jobs": INT, "immediateCheckpoint": BOOL}),
                    "tags": FREE, "historyTags": FREE,
                },
                ("destinationPath",),
            ),
            "volumeSnapshot": FREE,
        }),
        "bootstrap": FREE,
    }, ("instances",))),
    kind("postgresql.cnpg.io/v1", "ScheduledBackup", obj({
        "schedule": {"type": "string", "pattern": r"^\S+( \S+){5}$"},  # six fields: seconds first
        "cluster": LOCAL_REF,
        "backupOwnerReference": enum("none", "self", "cluster"),
        "method": enum("barmanObjectStore", "volumeSnapshot", "plugin"),
        "immediate": BOOL, "suspend": BOOL, "target": enum("primary", "prefer-standby"), "online": BOOL,
    }, ("cluster", "schedule"))),
    kind("postgresql.cnpg.io/v1", "Database", obj({
        "name": STR, "owner": STR, "cluster": LOCAL_REF, "ensure": enum("present", "absent"),
        "databaseReclaimPolicy": enum("delete", "retain"), "encoding": STR, "template": STR,
    }, ("cluster", "name", "owner"))),
    kind("monitoring.coreos.com/v1", "ServiceMonitor", obj({
        "selector": core("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
        "namespaceSelector": obj({"any": BOOL, "matchNames": arr(STR)}),
        "jobLabel": STR,
        "targetLabels": arr(STR),
        "endpoints": arr(obj({
            "port": STR, "targetPort": {"type": ["string", "integer"]}, "path": STR, "scheme": enum("http", "https"),
            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
            "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
            "honorLabels": BOOL, "honorTimestamps": BOOL, "relabelings": arr(FREE), "metricRelabelings": arr(FREE),
            "params": FREE, "tlsConfig": FREE,
        })),
    }, ("selector",))),
    kind("opentelemetry.io/v1beta1", "OpenTelemetryCollector", obj({
        "mode": enum("daemonset", "deployment", "sidecar", "statefulset"),
        "replicas": INT,
        "image": STR,
        "resources": RESOURCES,
        "podSecurityContext": core("io.k8s.api.core.v1.PodSecurityContext"),
        "securityContext": core("io.k8s.api.core.v1.SecurityContext"),
        "affinity": AFFINITY,
        "env": arr(core("io.k8s.api.core.v1.EnvVar")),
        "config": obj(
            {
                "receivers": FREE, "processors": FREE, "exporters": FREE, "connectors": FREE, "extensions": FREE,
                "service": obj({"pipelines": {"type": "object", "additionalProperties": OTEL_PIPELINE}, "telemetry": FREE, "extensions": arr(STR)}, ("pipelines",)),
            },
            ("receivers", "exporters", "service"),
        ),
    }, ("config",))),
])

@functools.cache
def crd_validator(key: tuple[str, str]) -> jsonschema.Draft202012Validator:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / LATEST_SCHEMAS
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))
    return jsonschema.Draft202012Validator(CRD_KINDS[key], registry=registry)
