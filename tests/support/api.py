"""What an operator does over HTTP: receive dossiers, look at cases, timelines, reports, dead letters and /metrics."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from prometheus_client.parser import text_string_to_metric_families

VN = ZoneInfo("Asia/Ho_Chi_Minh")


async def receive_dossier(intake: httpx.AsyncClient, applicant: str = "Nguyễn Thị Hồng Nhung") -> dict:
    """A clerk accepts a counter dossier; the receipt."""
    response = await intake.post(
        "/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant_name": applicant, "channel": "counter"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def case(workflow: httpx.AsyncClient, code: str) -> dict | None:
    """The case, or None while workflow does not know it."""
    response = await workflow.get(f"/api/v1/cases/{code}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()


async def timeline(reporting: httpx.AsyncClient, code: str) -> list[dict]:
    """The dossier's timeline entries ([] while reporting has none)."""
    response = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def chain_verdict(reporting: httpx.AsyncClient, code: str) -> dict:
    """What /timeline/verify says."""
    response = await reporting.get(f"/api/v1/dossiers/{code}/timeline/verify")
    assert response.status_code == 200, response.text
    return response.json()


async def received_total(reporting: httpx.AsyncClient, unit: str, day: str) -> int:
    """The summary report's received count for one unit and one day."""
    response = await reporting.get("/api/v1/reports/summary", params={"unit": unit, "from": day, "to": day})
    assert response.status_code == 200, response.text
    return response.json()["received_total"]


def vn_day(instant: str) -> str:
    """The Vietnamese calendar day of an ISO instant (what the summary report filters on)."""
    return datetime.fromisoformat(instant).astimezone(VN).date().isoformat()


def today() -> str:
    """Today in Vietnam."""
    return datetime.now(VN).date().isoformat()


async def dead_letters(client: httpx.AsyncClient, subject: str) -> list[dict]:
    """The dead letters whose subject (or Kafka key) is the dossier code, oldest first."""
    response = await client.get("/api/v1/dead-letters", params={"limit": 500})
    assert response.status_code == 200, response.text
    return sorted((d for d in response.json()["data"] if d["subject"] == subject), key=lambda d: d["offset"])


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels match (0 when there are none yet)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
