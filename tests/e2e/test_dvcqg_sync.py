"""Every dossier reaches the national portal: the DVCQG sync end to end, through a stand-in LGSP the test runs.

Intake, workflow and reporting run as processes; reporting syncs to ``tests/support/lgsp.py``, which checks the
session, the ``dstcode`` header, the date format and every required field against the JSON Schemas in ``docs/lgsp/``,
and each dossier's statuses against the national state machine. Digitization and payments are not running: the test
publishes their CloudEvents (a paper digitized or taken from the citizen's store, the fee requested and paid, the
result signed) as they would, as tests/e2e/test_reporting_flow.py does.

What a user checks: the portal holds each dossier of every channel, complete, its statuses in order; while the LGSP
is down the backlog grows on /metrics and drains in order when it returns, and those syncs count late; sessions that
expire mid-stream lose no dossier; a dossier the LGSP refuses holds up no other, shows in its history and the
metrics, is given up, and goes once an admin replays it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.envelope import Envelope
from shared.events import DocumentDigitized, DocumentReused, DocumentSigned, Event, PaymentConfirmed, PaymentRequested
from shared.webhooks import signature as webhook_signature
from tests.support.lgsp import StandInLgsp
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = "portal-test-secret-15a"
WINDOW = 20  # REPORTING_DVCQG_ON_TIME_SECONDS for this module: an outage longer than this makes syncs late
CITIZEN = {"kind": "citizen", "name": "Lê Thị Thu Hà", "id_number": "001203004567", "phone": "0912345678"}
SERVICES = ["intake", "workflow", "reporting"]
REFUSED_PROCEDURE = "1.004222"  # the stand-in LGSP refuses this procedure code ("not in the national catalog")

pytestmark = pytest.mark.timeout(900)


@dataclass
class World:
    stack: Stack
    lgsp: StandInLgsp
    producer: AIOKafkaProducer


@pytest.fixture(scope="module")
async def world(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with StandInLgsp().running() as lgsp:
        env = {
            **lgsp.env(),
            "INTAKE_PORTAL_WEBHOOK_SECRET": SECRET,
            "REPORTING_DVCQG_MAPPING": json.dumps({
                "field_codes": {"Cư trú": "G09-CA-03"}, "document_url": "https://dvc.h56.gov.vn/tai-lieu/{document_id}",
            }, ensure_ascii=False),
            "REPORTING_DVCQG_SETTLE_SECONDS": "0.5",
            "REPORTING_DVCQG_INTERVAL_SECONDS": "0.2",
            "REPORTING_DVCQG_BACKOFF_INITIAL_SECONDS": "0.3",
            "REPORTING_DVCQG_BACKOFF_MAX_SECONDS": "1.5",
            "REPORTING_DVCQG_MAX_REFUSALS": "3",
            "REPORTING_DVCQG_ON_TIME_SECONDS": str(WINDOW),
            "REPORTING_DVCQG_TIMEOUT_SECONDS": "5",
            "REPORTING_DVCQG_LEASE_SECONDS": "30",
        }  # fmt: skip
        stack = Stack.isolated(postgres, broker, Path(tmp_path_factory.mktemp("dvcqg")), services=SERVICES, env=env)
        await stack.start()
        producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            yield World(stack, lgsp, producer)
        finally:
            await producer.stop()
            stack.stop()


@pytest.fixture(autouse=True)
def lgsp_up(world: World) -> None:
    """Every test starts with the LGSP up, sessions lasting, nothing refused."""
    world.lgsp.down, world.lgsp.session_uses = False, 1_000_000
    world.lgsp.refuse_procedures.clear()


class Office:
    """One unit's officials, and digitization and payments as the test stands in for them."""

    def __init__(self, world: World, unit: str) -> None:
        self.world, self.stack, self.unit = world, world.stack, unit

    def client(self, service: str, role: str, subject: str, units: list[str] | None = None) -> httpx.AsyncClient:
        return self.stack.client(service, role, units=units or [self.unit], subject=subject, timeout=20)

    async def receive(self, channel: str = "counter", procedure: str = "1.004194", **extra: object) -> str:
        body: dict[str, Any] = {"procedure_code": procedure, "applicant": CITIZEN, "channel": channel, **extra}
        if channel == "postal":
            body["postal_tracking_number"] = "RR123456789VN"
        async with self.client("intake", "clerk", "mc-1") as clerk:
            response = await clerk.post("/api/v1/dossiers", json=body)
        assert response.status_code == 201, response.text
        return response.json()["code"]

    async def receive_online(self, submitted: datetime) -> str:
        body = {"portal_dossier_id": f"DVC-{time.time_ns()}", "unit": self.unit, "procedure_code": "1.004194",
                "applicant": CITIZEN, "submitted_at": submitted.isoformat(), "return_channel": "online",
                "identification": "vneid_level2"}  # fmt: skip
        raw, stamp = json.dumps(body, ensure_ascii=False).encode(), str(int(time.time()))
        headers = {"X-Portal-Timestamp": stamp, "X-Portal-Signature": "sha256=" + webhook_signature(SECRET, stamp, raw),
                   "Content-Type": "application/json"}  # fmt: skip
        async with httpx.AsyncClient(base_url=self.stack.url("intake"), timeout=20) as portal:
            response = await portal.post("/api/v1/portal/dossiers", content=raw, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()["code"]

    async def case(self, code: str, predicate: Callable[[dict], bool] = lambda c: True) -> dict:
        async with self.client("workflow", "auditor", "kt") as auditor:

            async def probe() -> dict | None:
                response = await auditor.get(f"/api/v1/cases/{code}")
                return response.json() if response.status_code == 200 and predicate(response.json()) else None

            return await eventually(probe, timeout=60)

    async def act(self, role: str, subject: str, code: str, action: str, body: dict | None = None) -> dict:
        async with self.client("workflow", role, subject) as official:
            response = await official.post(f"/api/v1/cases/{code}/{action}", json=body or {})
        assert response.status_code == 200, f"{action}: {response.text}"
        return response.json()

    async def supplement(self, code: str) -> None:
        await self.act("specialist", "cb-1", code, "supplement-request",
                       {"reason": "Thiếu hợp đồng thuê nhà có công chứng", "items": ["Hợp đồng thuê nhà"]})  # fmt: skip
        async with self.client("intake", "clerk", "mc-1") as clerk:

            async def handed_in() -> bool:
                response = await clerk.post(f"/api/v1/dossiers/{code}/supplements", json={"items": [{"name": "Hợp đồng thuê nhà", "form": "copy"}]})
                return response.status_code == 200

            await eventually(handed_in, timeout=60)
        await self.case(code, lambda c: c["status"] == "in_progress")

    async def publish(self, *events: Event) -> None:
        for event in events:
            env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=event.occurred_at, traceparent=None, actor="e2e")
            await self.world.producer.send_and_wait(self.stack.topic(event.producer), key=env.subject.encode(),
                                                    value=env.kafka_value(), headers=env.kafka_headers())  # fmt: skip

    async def sign(self, code: str) -> str:
        document = f"kq-{uuid.uuid4().hex[:8]}"
        await self.publish(DocumentSigned(dossier_code=code, unit=self.unit, occurred_at=datetime.now(VN), document_id=document,
                                          signer="Chủ tịch UBND", certificate_serial="54A1", kind="result"))  # fmt: skip
        return document

    async def pay(self, code: str, channel: str) -> int:
        case = await self.case(code)
        amount = int(case["fee_due_amount"])
        payment, now = f"tt-{uuid.uuid4().hex[:8]}", datetime.now(VN)
        await self.publish(
            PaymentRequested(dossier_code=code, unit=self.unit, occurred_at=now, payment_id=payment, amount=Decimal(amount),
                             lines=[{"code": "CT-TT", "name": "Lệ phí đăng ký tạm trú", "amount": Decimal(amount)}]),  # type: ignore[list-item]
            PaymentConfirmed(dossier_code=code, unit=self.unit, occurred_at=now + timedelta(milliseconds=10), payment_id=payment,
                             amount=Decimal(amount), channel=channel, provider="vietqr" if channel == "online" else "counter"),  # type: ignore[arg-type]
        )  # fmt: skip
        return amount

    async def history(self, code: str, role: str = "auditor", units: list[str] | None = None) -> httpx.Response:
        async with self.client("reporting", role, "kt", units) as reader:
            return await reader.get(f"/api/v1/dossiers/{code}/dvcqg-syncs")

    async def metrics(self) -> dict[str, float]:
        async with httpx.AsyncClient(base_url=self.stack.url("reporting"), timeout=20) as anyone:
            text = (await anyone.get("/metrics")).text
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values


def office(world: World) -> Office:
    return Office(world, random_unit())


async def on_portal(world: World, code: str, statuses: list[int], timeout: float = 90) -> dict[str, Any]:
    """Wait until the portal holds exactly these statuses for the dossier; its latest push."""

    async def probe() -> dict[str, Any] | None:
        return world.lgsp.latest(code) if world.lgsp.statuses(code) == statuses else None

    try:
        return await eventually(probe, timeout=timeout, interval=0.3)
    finally:
        assert world.lgsp.statuses(code) == statuses, (code, world.lgsp.statuses(code), world.lgsp.violations)


# ---- dossiers of all three channels ----------------------------------------------------------------------------------


async def test_dossiers_of_every_channel_reach_the_portal_complete_and_in_order(world: World) -> None:
    o = office(world)
    submitted = datetime.now(VN) - timedelta(minutes=20)
    counter, postal, online = await o.receive("counter"), await o.receive("postal"), await o.receive_online(submitted)
    codes = {"counter": counter, "postal": postal, "online": online}
    for code in codes.values():
        await o.case(code)
    now = datetime.now(VN)
    await o.publish(
        DocumentDigitized(dossier_code=counter, unit=o.unit, occurred_at=now, document_id=f"sc-{counter[-4:]}", stage="intake",
                          sha256="a" * 64, pages=2, component_code="TP-01", component_name="Tờ khai thay đổi thông tin cư trú CT01"),
        DocumentReused(dossier_code=online, unit=o.unit, occurred_at=now, document_id=f"kho-{online[-4:]}", component_code="TP-02",
                       component_name="Căn cước công dân", source_document_id="kho-cccd-001"),
    )  # fmt: skip
    for code in codes.values():
        await o.act("specialist", "cb-1", code, "assign", {"department": "Công an phường", "assignee": "me"})
        await o.supplement(code)
    results = {}
    for channel, code in codes.items():
        results[channel] = await o.sign(code)
        if channel == "postal":  # approved before the fee is paid: the portal sees status 6 first
            await o.case(code, lambda c: c["result_gate"]["missing"] == ["approval", "payment"])
            await o.act("leader", "ct", code, "approve")
            await o.case(code, lambda c: c["status"] == "awaiting_payment")
            await o.pay(code, "counter")
        else:
            await o.pay(code, "online" if channel == "online" else "counter")
            await o.case(code, lambda c: c["result_gate"]["missing"] == ["approval"])
            await o.act("leader", "ct", code, "approve")
        await o.case(code, lambda c: c["status"] == "done")
        returned = {"channel": "postal", "tracking_number": "EV000111222VN"} if channel == "postal" else {"channel": "counter"}
        await o.act("clerk", "mc-1", code, "return", returned)

    lives = {"counter": [2, 4, 5, 4, 4, 9, 10], "postal": [2, 4, 5, 4, 4, 6, 9, 10], "online": [1, 2, 4, 5, 4, 4, 9, 10]}
    portal = {channel: await on_portal(world, codes[channel], lives[channel]) for channel in codes}
    assert world.lgsp.violations == []
    assert {c: p["KenhThucHien"] for c, p in portal.items()} == {"counter": 1, "postal": 3, "online": 2}
    for channel, p in portal.items():
        assert p["MaTTHC"] == "1.004194" and p["MaLinhVuc"] == "G09-CA-03" and p["MaDinhDanhDV"] == o.unit
        assert p["NgayTra"] and p["NgayKetThucXuLy"] and p["NgayHenTra"]
        [supplement] = p["DanhSachHoSoBoSung"]
        assert supplement["TrangThaiBoSung"] == 1 and supplement["NgayHenTraMoi"] >= supplement["NgayHenTraTruoc"]
        [result] = p["DanhSachGiayToKetQua"]
        assert result["GiayToId"] == results[channel] and result["DuongDanTepTinKetQua"].endswith(results[channel])
        [fee] = p["DanhSachLePhi"]
        assert fee["Gia"] > 0 and fee["HinhThucThu"] == (2 if channel == "online" else 1)
    assert [p["DuocThanhToanTrucTuyen"] for p in portal.values()] == [0, 0, 2]
    assert portal["online"]["NgayNopHoSo"] == submitted.strftime("%Y%m%d%H%M%S")
    assert portal["online"]["TaiKhoanDuocXacThucVoiVNeID"] == 1
    [stored] = portal["online"]["TaiLieuNop"]
    assert (stored["DuocLayTuKhoDMQG"], stored["DuocSoHoa"]) == (1, 1)
    [scanned] = portal["counter"]["TaiLieuNop"]
    assert (scanned["DuocLayTuKhoDMQG"], scanned["DuocSoHoa"], scanned["MaThanhPhanHoSo"]) == (0, 1, "TP-01")
    for code in codes.values():  # assignment and approval as processing steps
        steps = [s["NoiDungXuLy"] for s in world.lgsp.steps(code)]
        assert steps == ["Phân công xử lý: Công an phường", "Lãnh đạo phê duyệt kết quả"], steps

    # The history an official reads: every sync accepted, its payload and the LGSP's answer.
    response = await o.history(online, role="clerk")
    assert response.status_code == 200, response.text
    syncs = response.json()["data"]
    assert [s["status"] for s in syncs if s["kind"] == "status"] == lives["online"]
    assert all(s["state"] == "accepted" and s["accepted_at"] for s in syncs)
    first = syncs[0]["history"][0]
    assert [r["service"] for r in first["request"]] == ["TraCuuHoSo", "DongBoHoSoMC"]
    assert first["request"][1]["body"]["isUpdating"] == "False" and first["request"][1]["body"]["data"][0]["TrangThaiHoSo"] == 1
    assert first["answer"][-1]["error_code"] == "00" and first["request"][1]["body"]["session"] == "***"
    assert syncs[0]["idempotency_key"].startswith(f"{online}:1:")
    other = await o.history(online, role="clerk", units=[random_unit()])
    assert other.status_code == 404


# ---- the LGSP down for a while ---------------------------------------------------------------------------------------


async def test_the_backlog_grows_while_the_lgsp_is_down_and_drains_in_order_late(world: World) -> None:
    o = office(world)
    world.lgsp.down = True
    codes = [await o.receive() for _ in range(2)]
    for code in codes:
        await o.case(code)
        await o.act("specialist", "cb-1", code, "assign", {"assignee": "me"})
        await o.act("specialist", "cb-1", code, "supplement-request", {"reason": "Thiếu giấy tờ", "items": ["Giấy khai sinh"]})
    last_change = time.monotonic()

    async def waiting() -> dict[str, float] | None:
        values = await o.metrics()
        return values if values["motcua_dvcqg_sync_backlog"] >= 7 and values["motcua_dvcqg_sync_oldest_age_seconds"] > 1 else None

    seen = await eventually(waiting, timeout=60, interval=0.5)  # 2, 4, 5 and a step each, every one unsent
    assert seen["motcua_dvcqg_syncs_total{kind=status,outcome=unavailable}"] > 0

    async def tried() -> list[dict] | None:
        syncs = (await o.history(codes[0])).json()["data"]
        return syncs if len(syncs) == 4 and finished(syncs[0]) else None

    def finished(sync: dict) -> list[dict]:  # an attempt may be on its way when the history is read
        return [a for a in sync["history"] if a["finished_at"] is not None]

    unsent = await eventually(tried, timeout=30, interval=0.5)
    assert [s["state"] for s in unsent] == ["pending"] * 4
    assert all(a["outcome"] == "unavailable" and "503" in a["error"] for a in finished(unsent[0]))
    assert all(not s["history"] for s in unsent[1:])  # later syncs wait behind the first
    await asyncio.sleep(max(0.0, WINDOW + 2 - (time.monotonic() - last_change)))  # the outage outlasts the on-time window
    world.lgsp.down = False
    for code in codes:
        await on_portal(world, code, [2, 4, 5])
    assert world.lgsp.violations == []
    drained = (await o.history(codes[0])).json()["data"]
    assert all(s["state"] == "accepted" for s in drained)
    assert [s["on_time"] for s in drained if s["kind"] == "status"] == [False, False, False]  # counted late: 766 sync rate
    assert [s["kind"] for s in drained] == ["status", "status", "progress", "status"]

    async def drained_metrics() -> bool:
        return (await o.metrics())["motcua_dvcqg_sync_backlog"] == 0

    await eventually(drained_metrics, timeout=30, interval=0.5)
    lag = (await o.metrics())["motcua_dvcqg_sync_lag_seconds_count{kind=status}"]
    assert lag >= 6
    # The unit's report: the six status changes were due and none reached the portal within the window.
    today = datetime.now(VN).date().isoformat()
    async with o.client("reporting", "leader", "ld") as leader:
        summary = await leader.get("/api/v1/reports/summary", params={"unit": o.unit, "from": today, "to": today})
    assert summary.status_code == 200, summary.text
    sync = summary.json()["rates"]["sync"]
    assert (sync["numerator"], sync["denominator"], sync["percent"]) == (0, 6, 0.0)


# ---- sessions that expire mid-stream ---------------------------------------------------------------------------------


async def test_sessions_expiring_mid_stream_lose_no_dossier(world: World) -> None:
    o = office(world)
    logins_before = world.lgsp.logins
    metric_before = (await o.metrics())["motcua_dvcqg_lgsp_logins_total"]
    world.lgsp.session_uses = 2  # each session is good for two calls: a lookup and a push, then it expires
    codes = [await o.receive() for _ in range(3)]
    for code in codes:
        await o.case(code)
        await o.act("specialist", "cb-1", code, "assign", {"assignee": "me"})
    world.lgsp.expire_sessions()
    for code in codes:
        await o.act("specialist", "cb-1", code, "supplement-request", {"reason": "Thiếu giấy tờ", "items": ["Sổ hộ khẩu"]})
    for code in codes:
        await on_portal(world, code, [2, 4, 5])
        assert len(world.lgsp.steps(code)) == 1
    assert world.lgsp.violations == []
    assert world.lgsp.logins - logins_before >= 4
    assert (await o.metrics())["motcua_dvcqg_lgsp_logins_total"] - metric_before >= 4


# ---- one dossier refused ---------------------------------------------------------------------------------------------


async def test_a_refused_dossier_holds_up_no_other_shows_in_history_and_metrics_and_is_replayed(world: World) -> None:
    o = office(world)
    world.lgsp.refuse_procedures.add(REFUSED_PROCEDURE)
    before = await o.metrics()
    bad, good = await o.receive(procedure=REFUSED_PROCEDURE), await o.receive()
    for code in (bad, good):
        await o.case(code)
        await o.act("specialist", "cb-1", code, "assign", {"assignee": "me"})
    await on_portal(world, good, [2, 4])

    async def given_up() -> list[dict] | None:
        syncs = (await o.history(bad)).json()["data"]
        return syncs if syncs[0]["state"] == "given_up" else None

    syncs = await eventually(given_up, timeout=60, interval=0.5)
    head = syncs[0]
    assert (head["status"], head["refusals"], head["last_code"]) == (2, 3, "-11")
    assert [a["outcome"] for a in head["history"]] == ["refused"] * 3
    assert "không khớp danh mục" in head["history"][0]["error"] and head["history"][0]["answer"][-1]["error_code"] == "-11"
    assert head["on_time"] is False and all(s["state"] == "pending" for s in syncs[1:])
    assert world.lgsp.statuses(bad) == []
    after = await o.metrics()
    refused = "motcua_dvcqg_syncs_total{kind=status,outcome=refused}"
    assert after[refused] - before[refused] >= 3 and after["motcua_dvcqg_syncs_given_up"] >= 1

    async with o.client("reporting", "admin", "qt") as admin, o.client("reporting", "clerk", "mc-1") as clerk:
        listed = await admin.get("/api/v1/dvcqg-syncs", params={"unit": o.unit, "state": "given_up"})
        assert listed.status_code == 200 and [s["dossier_code"] for s in listed.json()["data"]] == [bad]
        assert (await clerk.post(f"/api/v1/dvcqg-syncs/{head['id']}/replay")).status_code == 403
        world.lgsp.refuse_procedures.clear()  # the province maps the procedure to the national catalog
        replayed = await admin.post(f"/api/v1/dvcqg-syncs/{head['id']}/replay")
        assert replayed.status_code == 200 and replayed.json()["state"] == "pending" and replayed.json()["replayed_by"] == "qt"
    await on_portal(world, bad, [2, 4])
    assert world.lgsp.violations == []
