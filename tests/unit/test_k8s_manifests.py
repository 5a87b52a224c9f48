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
import tomllib
import typing
from collections.abc import Iterator
from importlib import import_module, resources
from importlib.metadata import requires
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
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
# Settings that another one stands in for: the key is mounted as a file, so JWT_PUBLIC_KEY stays unset; the
# services log in to Kafka with SCRAM (KAFKA_SASL_PASSWORD), so the mTLS client certificate and key stay unset.
ALTERNATIVES = {
    "jwt_public_key": "jwt_public_key_file",
    "kafka_ssl_certfile": "kafka_sasl_password",
    "kafka_ssl_keyfile": "kafka_sasl_password",
}
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
def test_migrations_run_before_the_code_that_needs_them(
    objects: tuple[dict[str, Any], ...], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitOps order (an Argo CD PreSync hook in the earliest wave), finished Jobs cleaned up, and each pod waiting
    in an init container until its database is at the code's head revision (``motcua migrate <service> --wait``)."""
    deployment, job = server(objects, service), migration(objects, service)
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation", "a new Job at each sync"
    assert int(annotations["argocd.argoproj.io/sync-wave"]) < 0
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 24 * 3600, "a finished Job goes, so the next apply runs one again"
    (init,) = pod_spec(deployment)["initContainers"]
    assert init["args"] == ["migrate", service, "--wait"]
    assert init["image"] == container(deployment)["image"]
    assert init.get("envFrom") == container(deployment).get("envFrom") and init.get("env") == container(deployment).get("env")
    # The command is one the image's CLI accepts: motcua.cli.main parses it and calls the migrate command with --wait.
    from motcua import cli

    calls: list[Any] = []
    monkeypatch.setattr(cli, "cmd_migrate", lambda args: calls.append(args) or 0)
    assert cli.main(init["args"]) == 0
    (args,) = calls
    assert args.wait is True and args.services == [service]


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
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}, "TLS and SCRAM only"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple", "the KafkaUsers' ACLs are enforced"
    assert common["KAFKA_BOOTSTRAP_SERVERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    assert (common["KAFKA_SECURITY_PROTOCOL"], common["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    for service in SERVICES:
        deployment = server(objects, service)
        literal, secrets = pod_environment(objects, deployment)
        # The CA file is the cluster CA's certificate, mounted from the Secret Strimzi keeps it in.
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        cafile = literal["KAFKA_SSL_CAFILE"]
        mount = next(m for m in container(deployment)["volumeMounts"] if cafile.startswith(m["mountPath"] + "/"))
        source = volumes[mount["name"]]["secret"]
        assert source["secretName"] == f"{kafka['metadata']['name']}-cluster-ca-cert"
        assert {"key": "ca.crt", "path": cafile.removeprefix(mount["mountPath"] + "/")} in source["items"]
        # The user and password are the service's KafkaUser's (Strimzi writes the password to a Secret of its name).
        user = named(objects, "KafkaUser", literal["KAFKA_SASL_USERNAME"])
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert secrets["KAFKA_SASL_PASSWORD"] == {"name": user["metadata"]["name"], "key": "password"}
        assert user["metadata"]["labels"]["app.kubernetes.io/name"] == service
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
        for c in [*spec["containers"], *spec.get("initContainers", [])]:
            security = c["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], name
            tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
            assert "emptyDir" in volumes[tmp["name"]], f"{name}: /tmp is a writable emptyDir"


def test_the_namespace_enforces_the_restricted_pod_security_standard(objects: tuple[dict[str, Any], ...]) -> None:
    (namespace,) = of_kind(objects, "Namespace")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


@pytest.mark.parametrize("service", SERVICES)
def test_shutdown_fits_the_grace_period_and_metrics_have_their_own_port(objects: tuple[dict[str, Any], ...], service: str) -> None:
    deployment = server(objects, service)
    spec, c = pod_spec(deployment), container(deployment)
    # preStop, then the drain of HTTP, relay and consumer and the pools' close (measured: README "Shutdown").
    assert spec["terminationGracePeriodSeconds"] == 60
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and 0 < int(sleep[1]) < 15
    literal, _ = pod_environment(objects, deployment)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == int(literal["METRICS_PORT"]) != ports["http"] == int(literal["PORT"])
    svc = named(objects, "Service", f"motcua-{service}")
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {"http": "http", "metrics": "metrics"}
    (endpoint,) = named(objects, "ServiceMonitor", f"motcua-{service}")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    # Only Prometheus's namespace reaches the metrics port; the ingress controller reaches the API port alone.
    for policy in policies_for(objects, pod_labels(deployment), "Ingress"):
        for rule in policy["spec"].get("ingress", []):
            namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]}
            if ports["metrics"] in {p["port"] for p in rule["ports"]}:
                assert namespaces == {"monitoring"}, policy["metadata"]["name"]
    for ingress in of_kind(objects, "Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                port = path["backend"]["service"]["port"]
                assert port.get("name") != "metrics" and port.get("number") != ports["metrics"], ingress["metadata"]["name"]


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
    if overlay == "production":
        # The release step sets the digest (kustomize edit set image motcua=…@sha256:…): README "Supply chain".
        name, _, digest = image.partition("@")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest) and "/" in name, image
    else:
        name, _, tag = image.rpartition(":")
        assert name and tag


DIGEST = re.compile(r"^[a-z0-9.\-/:]+@sha256:[0-9a-f]{64}$")


def images_of(node: Any) -> Iterator[tuple[str, str]]:
    """Every container image an object names: (where, image), through pod templates and the operators' fields."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("image", "imageName") and isinstance(value, str):
                yield key, value
            else:
                yield from images_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from images_of(item)


def test_every_image_in_production_is_pinned_by_digest() -> None:
    """Each image the production overlay names, Postgres's and the collector's included, is ``name[:tag]@sha256:…``.
    Kafka's and the Kafka Exporter's images are the Strimzi operator's for the pinned Kafka version (the operator
    release is pinned: README "Supply chain"), so the Kafka resource pins its version and metadata version."""
    objects = built("production")
    found = [(o["kind"], o["metadata"]["name"], image) for o in objects for _, image in images_of(o.get("spec", {}))]
    assert {kind for kind, _, _ in found} >= {"Deployment", "Job", "Cluster", "OpenTelemetryCollector"}
    floating = [f"{kind} {name}: {image}" for kind, name, image in found if not DIGEST.match(image)]
    assert not floating, "images by tag in production: " + ", ".join(floating)
    assert not any("minio" in image for _, _, image in found), "MinIO is the local stand-in only"
    (kafka,) = of_kind(objects, "Kafka")
    assert re.fullmatch(r"\d+\.\d+\.\d+", kafka["spec"]["kafka"]["version"])
    assert kafka["spec"]["kafka"]["metadataVersion"].startswith(kafka["spec"]["kafka"]["version"].rsplit(".", 1)[0] + "-IV")


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
    assert "synchronous" not in named(objects, "Cluster", "motcua-pg")["spec"]["postgresql"], "no standby to wait for"
    assert "topologySpreadConstraints" not in pod_spec(server(objects, "intake"))
    assert config_map(objects, "motcua-common")["ENVIRONMENT"] == "development"


def test_production_spreads_replicas_and_makes_producers_idempotent() -> None:
    objects = built("production")
    assert config_map(objects, "motcua-common")["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    for service in SERVICES:
        deployment = server(objects, service)
        assert named(objects, "HorizontalPodAutoscaler", f"motcua-{service}")["spec"]["minReplicas"] >= 2
        spread = {c["topologyKey"]: c for c in pod_spec(deployment)["topologySpreadConstraints"]}
        assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in spread.values():
            assert constraint["maxSkew"] == 1 and selects(constraint["labelSelector"], pod_labels(deployment))
        assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule", "never all on one node"
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
        assert kafka["spec"]["kafka"]["rack"] == {"topologyKey": "topology.kubernetes.io/zone"}, "replicas over zones"


def subscribed_producers(service: str) -> tuple[str, ...]:
    """The producers a service's consumer reads, from its code: ``subscriptions(deps)`` in its handlers module.

    Building the Subscription touches no dependency (handlers that need ``deps`` are bound with ``partial``), so
    a stub stands in for the Deps and nothing is started.
    """
    subscription = import_module(f"{registry.service(service).package}.handlers").subscriptions(object())
    return tuple(subscription.producers)


def acl_grants(user: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(resource type, name, operation) for every allow ACL of a KafkaUser; every name literal, no host limits."""
    grants: set[tuple[str, str, str]] = set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert resource.get("patternType", "literal") == "literal", f"{user['metadata']['name']}: no prefix or wildcard ACLs"
        assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*"
        grants |= {(resource["type"], resource["name"], operation) for operation in acl["operations"]}
    return grants


def test_each_service_writes_its_own_topic_and_reads_only_what_it_subscribes_to(objects: tuple[dict[str, Any], ...]) -> None:
    """The ACLs are what the code needs, derived from each service's subscriptions, not from a second list."""
    common = config_map(objects, "motcua-common")
    topics = {t["spec"]["topicName"] for t in of_kind(objects, "KafkaTopic")}
    users = {u["metadata"]["name"]: u for u in of_kind(objects, "KafkaUser")}
    assert len(users) == len(SERVICES), "one user per service"
    for service in SERVICES:
        literal, _ = pod_environment(objects, server(objects, service))
        user = users.pop(literal["KAFKA_SASL_USERNAME"])
        cls = settings_class(service)
        settings = cls.model_construct(kafka_topic_namespace=common["KAFKA_TOPIC_NAMESPACE"])
        own = settings.topic(service)
        expected = {("group", settings.consumer_group, "Read")}
        if own in topics:  # a producer: it writes its topic (its idempotent producer needs nothing more since Kafka 3.0)
            expected |= {("topic", own, "Write"), ("topic", own, "Describe")}
        for producer in subscribed_producers(service):
            assert settings.topic(producer) in topics, f"{service} subscribes to {producer}, which has no KafkaTopic"
            expected |= {("topic", settings.topic(producer), "Read"), ("topic", settings.topic(producer), "Describe")}
        assert acl_grants(user) == expected, f"{service}: ACLs differ from what its code writes and subscribes to"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "motcua"
    assert not users, f"users no service logs in as: {sorted(users)}"


def test_kafka_exposes_its_metrics(objects: tuple[dict[str, Any], ...]) -> None:
    (kafka,) = of_kind(objects, "Kafka")
    metrics = kafka["spec"]["kafka"]["metricsConfig"]
    assert metrics["type"] == "jmxPrometheusExporter"
    ref = metrics["valueFrom"]["configMapKeyRef"]
    rules = yaml.safe_load(named(objects, "ConfigMap", ref["name"])["data"][ref["key"]])
    assert rules["lowercaseOutputName"] is True and rules["rules"]
    assert "topicRegex" in kafka["spec"]["kafkaExporter"], "the Kafka Exporter runs"
    monitors = of_kind(objects, "PodMonitor")
    broker = {"strimzi.io/cluster": kafka["metadata"]["name"], "strimzi.io/kind": "Kafka", "strimzi.io/name": "motcua-kafka"}
    exporter = {**broker, "strimzi.io/name": "motcua-kafka-exporter"}
    for labels in (broker, exporter):
        assert any(
            selects(m["spec"]["selector"], labels) and any(e["port"] == "tcp-prometheus" for e in m["spec"]["podMetricsEndpoints"])
            for m in monitors
        ), labels


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
    # Backups everywhere: continuous WAL archiving and base backups to an S3-compatible store named by its address,
    # the first base backup at once, the WAL on a volume of its own (a failing archive never fills the data volume).
    spec = cluster["spec"]
    assert _bytes(spec["walStorage"]["size"]) >= 2**30
    store = spec["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    endpoint = urlsplit(store["endpointURL"])
    assert endpoint.scheme in ("http", "https") and endpoint.hostname, "the store's own address, never a public cloud's default"
    credentials = store["s3Credentials"]
    assert credentials["accessKeyId"]["name"] == credentials["secretAccessKey"]["name"]
    (scheduled,) = of_kind(objects, "ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"] and not scheduled["spec"].get("suspend")
    assert scheduled["spec"]["immediate"] is True and scheduled["spec"]["method"] == "barmanObjectStore"
    if overlay == "production":
        assert spec["instances"] == 3, "one primary and two standbys"
        # A commit waits for one of the standbys; without one, writes stop rather than risk losing acknowledged ones.
        assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
        assert endpoint.scheme == "https" and store["endpointCA"] == {"name": "motcua-pg-backup-ca", "key": "ca.crt"}
        assert spec["affinity"]["podAntiAffinityType"] == "required"
    else:
        # The local MinIO of the overlay: its Service, and a Job that makes the bucket the backups go to.
        host = endpoint.hostname
        assert endpoint.port == named(objects, "Service", host)["spec"]["ports"][0]["port"]
        bucket = urlsplit(store["destinationPath"]).hostname
        job = named(objects, "Job", "motcua-minio-bucket")
        assert f"http://{host}:{endpoint.port}" in " ".join(container(job)["args"]) and f"/{bucket}" in " ".join(container(job)["args"])


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
            if key in ("secretKeyRef", "passwordSecret", "accessKeyId", "secretAccessKey", "endpointCA") and "name" in node:
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
    # Strimzi writes these: each KafkaUser's password (a Secret of the user's name) and the cluster CA's certificate.
    (kafka,) = of_kind(objects, "Kafka")
    by_operators = {u["metadata"]["name"] for u in of_kind(objects, "KafkaUser")} | {f"{kafka['metadata']['name']}-cluster-ca-cert"}
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying to Kubernetes"):]
    deploy_readme = (K8S / "README.md").read_text()
    secrets_section = deploy_readme.split("\n## Secrets", 1)[1].split("\n## ", 1)[0]
    missing = sorted(
        name for name in referenced_secrets(objects) - by_operators if f"`{name}`" not in section and f"`{name}`" not in secrets_section
    )
    assert not missing, f"README 'Deploying to Kubernetes' or deploy/k8s/README.md 'Secrets' must say how to create {missing}"
    assert all(f"`{name}`" in secrets_section for name in referenced_secrets(objects) & by_operators), "say which the operators write"


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
    assert re.fullmatch(r"python:[\w.-]+@sha256:[0-9a-f]{64}", base.group(1)), "the base image by digest"
    assert all(image == "${PYTHON_IMAGE}" for image, _ in stages), "every stage on the pinned base"
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
                    "authentication": obj({"type": enum("tls", "scram-sha-512", "oauth", "custom")}, ("type",)),
                    "configuration": FREE,
                    "networkPolicyPeers": arr(core("io.k8s.api.networking.v1.NetworkPolicyPeer")),
                },
                ("name", "port", "type", "tls"),
            )),
            "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
            "authorization": obj({"type": enum("simple", "opa", "keycloak", "custom"), "superUsers": arr(STR)}, ("type",)),
            "rack": obj({"topologyKey": STR}, ("topologyKey",)),
            "metricsConfig": obj(
                {"type": enum("jmxPrometheusExporter", "strimziMetricsReporter"), "valueFrom": obj({"configMapKeyRef": SECRET_KEY}, ("configMapKeyRef",))},
                ("type",),
            ),
            "template": FREE, "logging": FREE, "image": STR,
        }, ("listeners",)),
        "entityOperator": obj({
            "topicOperator": obj({"resources": RESOURCES, "watchedNamespace": STR, "reconciliationIntervalMs": INT}),
            "userOperator": obj({"resources": RESOURCES, "watchedNamespace": STR}),
            "template": FREE,
        }),
        "cruiseControl": FREE,
        "kafkaExporter": obj({
            "image": STR, "topicRegex": STR, "groupRegex": STR, "topicExcludeRegex": STR, "groupExcludeRegex": STR,
            "resources": RESOURCES, "logging": STR, "enableSaramaLogging": BOOL, "showAllOffsets": BOOL, "template": FREE,
        }),
    }, ("kafka",))),
    kind("kafka.strimzi.io/v1beta2", "KafkaUser", obj({
        "authentication": obj({"type": enum("tls", "tls-external", "scram-sha-512"), "password": FREE}, ("type",)),
        "authorization": obj({"type": enum("simple"), "acls": arr(obj(
            {
                "resource": obj(
                    {"type": enum("topic", "group", "cluster", "transactionalId"), "name": STR, "patternType": enum("literal", "prefix")},
                    ("type",),
                ),
                "operations": arr(enum(
                    "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs",
                    "DescribeConfigs", "IdempotentWrite", "All",
                )),
                "host": STR, "type": enum("allow", "deny"),
            },
            ("resource", "operations"),
        ))}, ("type",)),
        "quotas": FREE, "template": FREE,
    })),
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
            "synchronous": obj(
                {
                    "method": enum("any", "first"), "number": {"type": "integer", "minimum": 1},
                    "dataDurability": enum("required", "preferred"), "maxStandbyNamesFromCluster": INT,
                    "standbyNamesPre": arr(STR), "standbyNamesPost": arr(STR),
                },
                ("method", "number"),
            ),
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
    kind("monitoring.coreos.com/v1", "PodMonitor", obj({
        "selector": core("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
        "namespaceSelector": obj({"any": BOOL, "matchNames": arr(STR)}),
        "jobLabel": STR,
        "podTargetLabels": arr(STR),
        "podMetricsEndpoints": arr(obj({
            "port": STR, "path": STR, "scheme": enum("http", "https"),
            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
            "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
            "honorLabels": BOOL, "relabelings": arr(obj({
                "sourceLabels": arr(STR), "separator": STR, "targetLabel": STR, "regex": STR, "modulus": INT,
                "replacement": STR, "action": STR,
            })), "metricRelabelings": arr(FREE), "params": FREE, "tlsConfig": FREE,
        })),
    }, ("selector",))),
    kind("monitoring.coreos.com/v1", "PrometheusRule", obj({
        "groups": arr(obj(
            {
                "name": STR, "interval": STR, "limit": INT, "partial_response_strategy": STR,
                "rules": arr(obj(
                    {
                        "alert": STR, "record": STR, "expr": {"type": ["string", "integer"]},
                        "for": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                        "keep_firing_for": STR,
                        "labels": {"type": "object", "additionalProperties": STR},
                        "annotations": {"type": "object", "additionalProperties": STR},
                    },
                    ("expr",),
                )),
            },
            ("name", "rules"),
        )),
    })),
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


# --- the image's hashed lock ----------------------------------------------------------------------------


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, tuple[str, list[str]]]:
    """deploy/requirements.lock: name -> (version, hashes)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = (ROOT / "deploy" / "requirements.lock").read_text()
    for block in re.split(r"\n(?=\S)", text):
        head = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if head:
            entries[_canonical(head.group(1))] = (head.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def _runtime_closure() -> set[str]:
    """The project's dependencies and theirs, on Linux with CPython 3.11, from the installed packages' metadata."""
    environment = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11", "implementation_name": "cpython"}
    pending = [(Requirement(r), ()) for r in pyproject()["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker and not any(
            requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or ("",))
        ):
            continue
        name = _canonical(requirement.name)
        if name in seen and not requirement.extras:
            continue
        seen.add(name)
        for line in requires(requirement.name) or []:
            pending.append((Requirement(line), tuple(requirement.extras)))
    return seen


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_image_installs_only_hashed_locked_packages() -> None:
    """The Dockerfile installs from deploy/requirements.lock with --require-hashes, and the lock pins, with hashes,
    every package of constraints.txt the project needs at run time, at constraints.txt's version, plus the build
    back end; nothing else (the test and bench tools of constraints.txt stay out of the image)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = re.search(r"pip install ([^\n]*)-r deploy/requirements\.lock", dockerfile)
    assert install and "--require-hashes" in install.group(1) and "--only-binary=:all:" in install.group(1)
    project = re.search(r"pip install ([^\n]*) \.(?: |$)", dockerfile, re.MULTILINE)
    assert project and {"--no-deps", "--no-build-isolation", "--no-index"} <= set(project.group(1).split()), "nothing unhashed"
    lock = _lock()
    constraints = {
        _canonical(_requirement_name(line)): line.split("==", 1)[1].strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert all(hashes for _, hashes in lock.values()), "every locked package has its hashes"
    runtime = _runtime_closure()
    assert runtime <= set(lock), f"run-time packages missing from the lock: {sorted(runtime - set(lock))}"
    assert runtime <= set(constraints), f"run-time packages constraints.txt does not pin: {sorted(runtime - set(constraints))}"
    for name in runtime:
        assert lock[name][0] == constraints[name], f"{name}: lock {lock[name][0]}, constraints.txt {constraints[name]}"
    build = {_canonical(_requirement_name(r)) for r in pyproject()["build-system"]["requires"]}
    assert build <= set(lock), "the build back end is locked too (--no-build-isolation)"
    assert set(lock) == runtime | build, f"packages in the lock the image does not need: {sorted(set(lock) - runtime - build)}"
