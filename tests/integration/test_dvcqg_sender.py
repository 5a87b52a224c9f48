"""The DVCQG sync in process: reporting's real handlers queue, the real sender sends to a stand-in LGSP, on a real
Postgres, with a clock the test moves. What an operator and the national portal would see is asserted: the order of
statuses per dossier, refusals held to their own dossier, the outcome of each sync for the 766 sync indicator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from motcua.devstack import EmbeddedPostgres
from services.reporting import domain, handlers, store
from services.reporting.app import reporting_deps
from services.reporting.deps import ReportingDeps
from services.reporting.settings import ReportingSettings
from services.reporting.syncs import DvcqgSender
from shared.auth import Principal
from shared.clock import ManualClock
from shared.db import Database
from shared.envelope import Envelope
from shared.errors import Problem
from shared.events import (
    CaseApproved,
    CaseAssigned,
    CaseResultReady,
    CaseReturned,
    CaseSupplementRequested,
    DocumentSigned,
    DossierReceived,
    Event,
    PaymentConfirmed,
    PaymentRequested,
)
from shared.roles import Role
from tests.support.lgsp import SESSION_EXPIRED, StandInLgsp
from tests.support.platform import namespace, service_database

VN = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2031, 3, 3, 8, 0, tzinfo=VN)
WINDOW = 300.0

pytestmark = pytest.mark.integration


@dataclass
class World:
    db: Database
    clock: ManualClock
    deps: ReportingDeps
    lgsp: StandInLgsp
    sender: DvcqgSender
    province: str

    def unit(self) -> str:
        return f"000.{uuid.uuid4().int % 90 + 10:02d}.01.{self.province}"

    async def apply(self, *events: Event) -> None:
        """Each event through reporting's consumer handler, in its own transaction, as the consumer applies it."""
        for event in events:
            async with self.db.unit_of_work() as tx:
                env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=event.occurred_at, traceparent=None, actor="cb-1")
                await handlers.on_dossier_event(tx, event, env, deps=self.deps)

    async def round(self) -> int:
        """One sender round: claim, send each claimed sync, record."""
        claimed = await self.sender.claim(50)
        await asyncio.gather(*(self.sender.deliver(c) for c in claimed))
        return len(claimed)

    async def drain(self, rounds: int = 30) -> None:
        for _ in range(rounds):
            if not await self.round():
                return

    async def history(self, code: str) -> list[handlers.SyncView]:
        async with self.db.reading() as tx:
            return await handlers.sync_history(tx, code, deps=self.deps, user=AUDITOR)


AUDITOR = Principal(subject="kt", roles=frozenset({Role.AUDITOR}), units=frozenset({"*"}))


@pytest.fixture
async def world(postgres: EmbeddedPostgres) -> AsyncIterator[World]:
    migrated = await service_database(postgres, "reporting", namespace())
    await migrated.dispose()
    clock = ManualClock(START)
    db = Database(migrated.url, service="reporting", namespace=migrated.namespace, clock=clock, pool_size=4)
    async with StandInLgsp().running() as lgsp:
        settings = ReportingSettings(
            dvcqg_lgsp_url=lgsp.url, dvcqg_username=lgsp.username, dvcqg_password=lgsp.password, dvcqg_dstcode=lgsp.dstcode,
            dvcqg_session_invalid_codes=[SESSION_EXPIRED], dvcqg_mapping={"field_codes": {"Cư trú": "G09-CA-03"}},
            dvcqg_settle_seconds=0, dvcqg_backoff_initial_seconds=1, dvcqg_backoff_max_seconds=2, dvcqg_max_refusals=3,
            dvcqg_on_time_seconds=WINDOW, dvcqg_timeout_seconds=5, dvcqg_lease_seconds=60,
        )  # fmt: skip
        deps = reporting_deps(settings, domain.ReportRules(), db, clock)
        sender = DvcqgSender(db, settings, deps.sync_mapping)
        try:
            yield World(db, clock, deps, lgsp, sender, f"Q{uuid.uuid4().hex[:5].upper()}")
        finally:
            assert sender.client is not None
            await sender.client.aclose()
            await db.dispose()


def received(code: str, unit: str, at: datetime, channel: str = "counter", **extra: object) -> DossierReceived:
    return DossierReceived(
        dossier_code=code, unit=unit, occurred_at=at, procedure_code="1.004194", procedure_name="Đăng ký tạm trú",
        procedure_field="Cư trú", applicant_name="Trần Văn Bình", channel=channel, received_at=at,  # type: ignore[arg-type]
        appointment_at=at + timedelta(days=3), fee_due=15000, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def code_of(unit: str) -> str:
    return f"{unit}-310303-{uuid.uuid4().int % 10_000:04d}"


async def test_a_dossier_arrives_complete_and_in_order_even_when_workflow_is_heard_before_intake(world: World) -> None:
    unit = world.unit()
    code = code_of(unit)
    t = START
    # The workflow's topic is read ahead of intake's: the assignment lands first.
    await world.apply(CaseAssigned(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=2), department="Công an xã", assignee="cb-1"))
    assert await world.round() == 0  # nothing is sent before the reception is known
    await world.apply(received(code, unit, t))
    await world.drain()
    later = [
        CaseSupplementRequested(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=5), reason="Thiếu hợp đồng thuê nhà"),
        PaymentRequested(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=6), payment_id="p1", amount=Decimal(15000),
                         lines=[{"code": "CT-TT", "name": "Lệ phí đăng ký tạm trú", "amount": Decimal(15000)}]),  # type: ignore[list-item]
        PaymentConfirmed(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=7), payment_id="p1", amount=Decimal(15000), channel="online"),
        DocumentSigned(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=8), document_id="kq-1", signer="CT", certificate_serial="54"),
        CaseApproved(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=9), approved_by="ct"),
        CaseResultReady(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=9), finished_at=t + timedelta(minutes=9), timeliness="early"),
        CaseReturned(dossier_code=code, unit=unit, occurred_at=t + timedelta(minutes=10), returned_at=t + timedelta(minutes=10),
                     return_channel="counter", timeliness="early"),
    ]  # fmt: skip
    world.clock.set(t + timedelta(minutes=10))
    await world.apply(*later)
    await world.drain()
    assert world.lgsp.violations == []
    # 2, 4 (assigned), 5, then the approval: 4 again (a status change after the supplement request), 9, 10.
    assert world.lgsp.statuses(code) == [2, 4, 5, 4, 9, 10]
    assert [s["NoiDungXuLy"] for s in world.lgsp.steps(code)] == ["Phân công xử lý: Công an xã", "Lãnh đạo phê duyệt kết quả"]
    portal = world.lgsp.latest(code)
    assert portal is not None
    assert (portal["DuocThanhToanTrucTuyen"], portal["DanhSachLePhi"][0]["Gia"], portal["KenhThucHien"]) == (2, 15000, 1)
    assert portal["DanhSachGiayToKetQua"][0]["GiayToId"] == "kq-1" and portal["NgayTra"] == "20310303081000"
    nine = [p.item for p in world.lgsp.portal[code] if p.item.get("TrangThaiHoSo") == 9][0]
    assert "NgayTra" not in nine  # the result-ready push tells the dossier as it was then
    assert world.lgsp.lookups[code] == 1
    views = await world.history(code)
    assert all(row.state == "accepted" for row, _, _ in views)
    first_status = next(attempts for row, attempts, _ in views if row.kind == "status")
    assert [r["service"] for r in first_status[0].request or []] == ["TraCuuHoSo", "DongBoHoSoMC"]
    assert first_status[0].request[1]["body"]["isUpdating"] == "False" and first_status[0].request[1]["body"]["session"] == "***"


async def test_a_refused_dossier_backs_off_alone_is_given_up_visibly_and_replayed_by_an_admin(world: World) -> None:
    unit = world.unit()
    bad, good = code_of(unit), code_of(unit)
    world.lgsp.refuse.add(bad)
    await world.apply(received(bad, unit, START), received(good, unit, START))
    await world.apply(CaseAssigned(dossier_code=bad, unit=unit, occurred_at=START + timedelta(minutes=1), assignee="cb-1"),
                      CaseAssigned(dossier_code=good, unit=unit, occurred_at=START + timedelta(minutes=1), assignee="cb-1"))  # fmt: skip
    for _ in range(4):
        await world.drain()
        world.clock.advance(timedelta(seconds=3))  # past the backoff (at most 2 s)
    assert world.lgsp.statuses(good) == [2, 4] and world.lgsp.statuses(bad) == []
    views = await world.history(bad)
    head, attempts, on_time = views[0]
    assert (head.status, head.state, head.refusals, head.last_code) == (2, "given_up", 3, "-11")
    assert [a.outcome for a in attempts] == ["refused"] * 3 and attempts[0].error_code == "-11"
    assert "mã thủ tục không khớp" in (attempts[0].error or "") and attempts[0].answer
    assert on_time is False
    assert all(row.state == "pending" and row.attempts == 0 for row, _, _ in views[1:])  # held behind the given-up sync
    async with world.db.reading() as tx:
        backlog = await store.sync_backlog(session=tx.session, now=tx.now)
    assert backlog["given_up"] == 1 and backlog["pending"] == 2

    admin = Principal(subject="qt", roles=frozenset({Role.ADMIN}), units=frozenset({unit}))
    other = Principal(subject="qt2", roles=frozenset({Role.ADMIN}), units=frozenset({world.unit()}))
    async with world.db.unit_of_work(actor="qt2") as tx:
        with pytest.raises(Problem) as hidden:
            await handlers.replay_sync(tx, head.id or 0, deps=world.deps, user=other)
    assert hidden.value.status == 404
    world.lgsp.refuse.clear()  # the province fixed the procedure code
    async with world.db.unit_of_work(actor="qt") as tx:
        row, _, _ = await handlers.replay_sync(tx, head.id or 0, deps=world.deps, user=admin)
    assert (row.state, row.replayed_by) == ("pending", "qt")
    await world.drain()
    assert world.lgsp.statuses(bad) == [2, 4] and world.lgsp.violations == []
    async with world.db.unit_of_work(actor="qt") as tx:
        with pytest.raises(Problem) as again:
            await handlers.replay_sync(tx, head.id or 0, deps=world.deps, user=admin)
    assert again.value.status == 409


async def test_syncs_accepted_after_the_window_count_against_the_sync_indicator(world: World) -> None:
    unit = world.unit()
    early, late = code_of(unit), code_of(unit)
    await world.apply(received(early, unit, START))
    await world.drain()  # accepted at once: on time
    world.lgsp.down = True
    world.clock.set(START + timedelta(minutes=1))
    await world.apply(received(late, unit, START + timedelta(minutes=1)),
                      CaseAssigned(dossier_code=early, unit=unit, occurred_at=START + timedelta(minutes=1), assignee="cb-1"))  # fmt: skip
    await world.drain()
    period = domain.month_period(START.date().replace(day=1))
    scope = domain.parse_scope(unit)

    async def outcomes(now: datetime):  # type: ignore[no-untyped-def]
        async with world.db.reading() as tx:
            return await store.sync_outcomes(session=tx.session, scope=scope, period=period, window_seconds=WINDOW, now=now)

    during = await outcomes(world.clock.now())
    assert (during.due, during.on_time, during.late, during.pending) == (3, 1, 0, 2)  # the outage has lasted a minute
    world.clock.set(START + timedelta(minutes=10))  # the LGSP comes back after the window has run out
    world.lgsp.down = False
    await world.drain()
    assert world.lgsp.statuses(late) == [2] and world.lgsp.statuses(early) == [2, 4]
    after = await outcomes(world.clock.now())
    assert (after.due, after.on_time, after.late, after.pending) == (3, 1, 2, 0)
    # The district and the province count the same syncs; another province none.
    district = await _outcomes_of(world, f"000.00.01.{world.province}", period)
    assert (district.due, district.on_time) == (3, 1)
    assert (await _outcomes_of(world, "Q0000", period)).due == 0
    unavailable = [a for _, attempts, _ in await world.history(late) for a in attempts if a.outcome == "unavailable"]
    assert unavailable and "503" in (unavailable[0].error or "")


async def _outcomes_of(world: World, unit: str, period: domain.Period):  # type: ignore[no-untyped-def]
    async with world.db.reading() as tx:
        return await store.sync_outcomes(session=tx.session, scope=domain.parse_scope(unit), period=period, window_seconds=WINDOW, now=tx.now)


async def test_an_earlier_status_heard_after_a_later_one_was_accepted_is_not_sent_backwards(world: World) -> None:
    unit = world.unit()
    code = code_of(unit)
    await world.apply(received(code, unit, START))
    await world.apply(CaseResultReady(dossier_code=code, unit=unit, occurred_at=START + timedelta(minutes=9),
                                      finished_at=START + timedelta(minutes=9), timeliness="early"))  # fmt: skip
    await world.drain()
    assert world.lgsp.statuses(code) == [2, 9]
    # The supplement request of minute 5 reaches reporting only now.
    await world.apply(CaseSupplementRequested(dossier_code=code, unit=unit, occurred_at=START + timedelta(minutes=5), reason="Thiếu giấy tờ"))
    await world.drain()
    assert world.lgsp.statuses(code) == [2, 9] and world.lgsp.violations == []
    states = [(row.status, row.state) for row, _, _ in await world.history(code) if row.kind == "status"]
    assert states == [(2, "accepted"), (5, "superseded"), (9, "accepted")]


async def test_sessions_that_expire_mid_stream_lose_no_dossier(world: World) -> None:
    world.lgsp.session_uses = 3  # every session is good for three calls
    unit = world.unit()
    codes = [code_of(unit) for _ in range(6)]
    await world.apply(*(received(c, unit, START) for c in codes))
    await world.drain()
    world.lgsp.expire_sessions()
    await world.apply(*(CaseAssigned(dossier_code=c, unit=unit, occurred_at=START + timedelta(minutes=1), assignee="cb-1") for c in codes))
    await world.drain()
    for _ in range(3):  # a refusal while two logins raced may have backed one off
        world.clock.advance(timedelta(seconds=3))
        await world.drain()
    assert {c: world.lgsp.statuses(c) for c in codes} == {c: [2, 4] for c in codes}
    assert world.lgsp.violations == [] and world.lgsp.logins > 4
