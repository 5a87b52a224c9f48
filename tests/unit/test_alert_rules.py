"""The production alerts (PrometheusRule in deploy/k8s/overlays/production/alerts.yaml) with Debian's ``promtool``.

The rule groups are taken from the built production overlay (``kubectl kustomize``, as the manifest tests build it)
and written as a Prometheus rules file. ``promtool check rules`` must accept every expression and template;
``promtool test rules`` then feeds synthetic series to some of them and checks that they fire, with the labels and
the rendered summary an operator would read, when they should and not before. Every alert names a runbook line that
exists in deploy/k8s/README.md, and every motcua_* metric an alert reads is one the code exposes. Whether those
metrics really come out of the running services with the labels the alerts use is tests/e2e/test_alerts.py's part.

``promtool`` is Debian's (``prometheus`` package), unpacked under the venv as the dashboard tests do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.debian import unpacked_package
from tests.unit.test_k8s_manifests import K8S, built, metric_names, of_kind

pytestmark = pytest.mark.timeout(900)  # the first run may download Prometheus


def promtool() -> Path:
    found = shutil.which("promtool")
    if found:
        return Path(found)
    return unpacked_package("prometheus", "prometheus-deb") / "usr" / "bin" / "promtool"


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups of every PrometheusRule the production overlay builds."""
    rules = of_kind(built("production"), "PrometheusRule")
    assert rules, "the production overlay has no PrometheusRule"
    return [group for rule in rules for group in rule["spec"]["groups"]]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rule_groups() for rule in group["rules"] if "alert" in rule}


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "motcua-alerts.yml"
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False, allow_unicode=True))
    return path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool()), *map(str, args)], capture_output=True, text=True, check=False, cwd=cwd)


def test_promtool_accepts_every_rule(rules_file: Path) -> None:
    result = run("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in rule_groups())
    assert f"SUCCESS: {count} rules found" in result.stdout, result.stdout


def test_promtool_refuses_a_broken_expression(tmp_path: Path) -> None:
    """The check above can fail: a rule with a syntax error is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum by (service (x)"}]}]}))
    assert run("check", "rules", broken).returncode != 0


def test_the_issue_s_alerts_exist() -> None:
    """Each condition the deployment must alert on has an alert reading the metric that shows it."""
    reads = {name: rule["expr"] for name, rule in alerts().items()}

    def reading(metric: str) -> list[str]:
        return [name for name, expr in reads.items() if re.search(rf"\b{metric}\b", expr)]

    for metric in (
        "cnpg_pg_stat_archiver_last_failed_time",  # WAL archiving failing
        "cnpg_collector_last_failed_backup_timestamp",  # backup failing
        "motcua_consumer_lag",  # consumer lag and its growth
        "motcua_dead_letters_total",  # dead letters increasing
        "motcua_outbox_oldest_age_seconds",  # outbox backlog age
        "kafka_server_replicamanager_underreplicatedpartitions",  # under-replicated partitions
        "kafka_controller_kafkacontroller_offlinepartitionscount",  # offline partitions
        "kubelet_volume_stats_used_bytes",  # volumes above 80 %
        "motcua_notification_oldest_age_seconds",  # notification backlog
        "motcua_portal_push_oldest_age_seconds",  # portal sync backlog
        "motcua_dvcqg_sync_oldest_age_seconds",  # national portal sync backlog
        "motcua_http_request_duration_seconds_count",  # error rate per service
        "motcua_http_request_duration_seconds_bucket",  # p99 latency per service
        "motcua_http_shed_total",  # admission-control shedding
    ):
        assert reading(metric), f"no alert reads {metric}"
    assert any("deriv(motcua_consumer_lag" in expr for expr in reads.values()), "lag growth"
    assert any("histogram_quantile(0.99" in expr and "by (service, le)" in expr for expr in reads.values()), "p99 per service"


def test_every_alert_has_a_runbook_line_severity_and_known_metrics() -> None:
    readme = (K8S / "README.md").read_text()
    runbook = readme.split("\n## Runbook", 1)[1].split("\n## ", 1)[0]
    lines = dict(re.findall(r"^- `(\w+)`: (.+)$", runbook, re.MULTILINE))
    known = metric_names()
    for name, rule in alerts().items():
        assert rule["annotations"]["runbook"] == f"deploy/k8s/README.md, Runbook: {name}"
        assert len(lines.get(name, "")) > 40, f"deploy/k8s/README.md 'Runbook' has no line for {name}"
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        for metric in re.findall(r"\b(motcua_[a-z0-9_]+)\b", rule["expr"]):
            assert metric in known, f"{name} reads {metric}, which no code exposes"
    assert set(lines) == set(alerts()), "runbook lines for alerts that do not exist"


# --- promtool test rules: synthetic series, expected firings --------------------------------------------------

# (alert, input series, times with the alert firing and its labels and rendered summary, times without it)
CASES: list[tuple[str, list[dict[str, str]], list[tuple[str, dict[str, str], str]], list[str]]] = [
    (
        "MotcuaOutboxBacklogOld",
        [
            {"series": 'motcua_outbox_oldest_age_seconds{service="intake", pod="intake-1"}', "values": "0+60x30"},
            {"series": 'motcua_outbox_oldest_age_seconds{service="workflow", pod="workflow-1"}', "values": "0x30"},
        ],
        [("15m", {"service": "intake"}, "intake's oldest unpublished event is 15m 0s old")],
        ["5m"],  # 300 s is not yet "over 5 minutes"
    ),
    (
        "MotcuaDeadLetters",
        [{"series": 'motcua_dead_letters_total{service="workflow", reason="permanent", pod="w-1"}', "values": "0 0 0 1x30"}],
        [("5m", {"service": "workflow", "reason": "permanent"}, "workflow wrote dead letters (permanent)")],
        ["2m", "25m"],  # before it, and once the 10-minute window holds no increase
    ),
    (
        "MotcuaConsumerLagGrowing",
        [{"series": 'motcua_consumer_lag{service="reporting", topic="motcua.intake", partition="0"}', "values": "0+10x60"}],
        [("40m", {"service": "reporting", "topic": "motcua.intake"}, "reporting's lag on motcua.intake keeps growing")],
        ["20m"],  # above 100 only from 11m, and it must hold 15 minutes
    ),
    (
        "MotcuaPostgresWALArchivingFailing",
        [
            {"series": 'cnpg_pg_stat_archiver_last_failed_time{namespace="motcua", pod="motcua-pg-1"}', "values": "2000x20"},
            {"series": 'cnpg_pg_stat_archiver_last_archived_time{namespace="motcua", pod="motcua-pg-1"}', "values": "1000x20"},
        ],
        [("10m", {"namespace": "motcua", "pod": "motcua-pg-1"}, "WAL archiving of motcua-pg-1 is failing")],
        ["3m"],
    ),
    (
        "MotcuaVolumeFilling",
        [
            {"series": 'kubelet_volume_stats_used_bytes{namespace="motcua", persistentvolumeclaim="motcua-pg-1-wal"}', "values": "85x20"},
            {"series": 'kubelet_volume_stats_capacity_bytes{namespace="motcua", persistentvolumeclaim="motcua-pg-1-wal"}', "values": "100x20"},
            {"series": 'kubelet_volume_stats_used_bytes{namespace="motcua", persistentvolumeclaim="motcua-pg-1"}', "values": "50x20"},
            {"series": 'kubelet_volume_stats_capacity_bytes{namespace="motcua", persistentvolumeclaim="motcua-pg-1"}', "values": "100x20"},
        ],
        [("10m", {"namespace": "motcua", "persistentvolumeclaim": "motcua-pg-1-wal"}, "Volume motcua-pg-1-wal is 85% full")],
        [],
    ),
    (
        "MotcuaHighErrorRate",
        [
            {"series": 'motcua_http_request_duration_seconds_count{service="payments", status="500", route="/r"}', "values": "0+6x30"},
            {"series": 'motcua_http_request_duration_seconds_count{service="payments", status="200", route="/r"}', "values": "0+54x30"},
            {"series": 'motcua_http_request_duration_seconds_count{service="intake", status="200", route="/r"}', "values": "0+60x30"},
        ],
        [("20m", {"service": "payments"}, "payments answers 10% of requests with 5xx")],
        [],
    ),
    (
        "MotcuaKafkaUnderMinInSyncReplicas",
        [{"series": 'kafka_server_replicamanager_underminisrpartitioncount{namespace="motcua", pod="motcua-dual-role-0"}', "values": "0 0 3x20"}],
        [("8m", {"namespace": "motcua"}, "3 partitions are below min.insync.replicas: the relays cannot publish")],
        ["1m"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_alert_fires_when_it_should(rules_file: Path, case: tuple[Any, ...]) -> None:
    name, series, firing, quiet = case
    rule = alerts()[name]
    static = {k: v for k, v in rule["annotations"].items() if k != "summary"}
    checks = [
        {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [
                {"exp_labels": {**labels, "severity": rule["labels"]["severity"]}, "exp_annotations": {**static, "summary": summary}}
            ],
        }
        for at, labels, summary in firing
    ] + [{"eval_time": at, "alertname": name, "exp_alerts": []} for at in quiet]
    tests = {
        "rule_files": [rules_file.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    spec = rules_file.parent / f"test-{name}.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False, allow_unicode=True))
    result = run("test", "rules", spec.name, cwd=rules_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
