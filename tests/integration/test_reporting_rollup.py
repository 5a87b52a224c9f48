"""The monthly roll-up against the dossiers' own rows: a generated province, months of every kind of dossier.

Events go through reporting's real handlers (one transaction each, in the order of their times, some producers'
events ahead of intake's), so the roll-up is what the live consumer keeps. Then every month's table of every unit
level, breakdown and filter read from the roll-up equals the one counted from ``dossier_facts`` by the same SQL the
hand-counted e2e month checks (tests/e2e/test_reporting.py), and a rebuild counts the same roll-up again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from motcua.devstack import EmbeddedPostgres
from services.reporting import domain, handlers, store
from services.reporting.deps import ReportingDeps
from services.reporting.settings import ReportingSettings
from shared.clock import ManualClock
from shared.db import Database
from shared.envelope import Envelope
from shared.events import (
    CaseApologyIssued,
    CaseAssigned,
    CaseClockResumed,
    CaseFeedbackAnswered,
    CaseFeedbackReceived,
    CaseOverdue,
    CaseRated,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    DocumentSigned,
    DossierDigitized,
    DossierReceived,
    DossierWithdrawn,
    Event,
    PaymentConfirmed,
    PaymentRequested,
)
from tests.support.platform import namespace, service_database

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PROCEDURES = [("1.004194", "Đăng ký tạm trú"), ("1.001193", "Đăng ký khai sinh"), ("2.000889", "Chứng thực bản sao"),
              ("1.003005", "Cấp giấy phép xây dựng")]  # fmt: skip
FIELDS = {"1.004194": "Cư trú", "1.001193": "Hộ tịch", "2.000889": "Chứng thực", "1.003005": "Xây dựng"}
RULES = domain.ReportRules()
MONTHS = [date(2030, m, 1) for m in (3, 4, 5, 6, 7, 8, 9, 10)]
DOSSIERS = 120
LAST_EVENT_MONTH = date(2030, 8, 1)  # the clock follows the events: the roll-up is rolled forward through August


def _units(province: str) -> list[str]:
    communes = [f"000.{c:02d}.{d:02d}.{province}" for d in (1, 2, 3) for c in (1, 2, 3)]
    return communes + [f"000.00.{d:02d}.{province}" for d in (1, 2)]


def _dossier(rng: random.Random, code: str, unit: str) -> list[Event]:
    """One dossier's events in time order: received in April–June 2030, then one of the paths a case takes."""
    received = datetime(2030, 4, 1, 8, tzinfo=VN) + timedelta(days=rng.randrange(85), hours=rng.randrange(9))
    due = (received + timedelta(days=rng.choice([2, 5, 10, 20, 40]))).replace(hour=17, minute=0)
    procedure = rng.choice(PROCEDURES)
    officer = rng.choice(["cb-1", "cb-2", "cb-3"])
    base = {"dossier_code": code, "unit": unit}
    identity = random.Random(code)
    t = received
    events: list[Event] = [DossierReceived(
        **base, occurred_at=received, procedure_code=procedure[0], procedure_name=procedure[1], applicant_name="Nguyễn Văn An",
        channel=rng.choice(["online", "counter", "counter", "postal"]), received_at=received, appointment_at=due,
        due_at_original=due, received_by="mc-1", fee_due=rng.choice([0, 0, 30000]), reused_components=rng.choice([0, 0, 1]),
        # its own draws, so the rest of the data set is the one the figures below were chosen for
        identification=identity.choice([None, "none", "chip_card", "vneid_level2"]), population_data_reused=identity.choice([None, False, True]),
    )]  # fmt: skip

    def step(hours: float) -> datetime:
        nonlocal t
        t = t + timedelta(hours=hours)
        return t

    if rng.random() < 0.7:
        events.append(CaseAssigned(**base, occurred_at=step(1), department=rng.choice([None, "Công an xã"]), assignee=officer))
    if rng.random() < 0.3:
        events.append(DossierDigitized(**base, occurred_at=step(0.5), required=2, digitized=2, reused=rng.choice([0, 1])))
    if rng.random() < 0.2:
        events.append(PaymentRequested(**base, occurred_at=step(0.2), payment_id=f"p-{code}", amount=Decimal(8000)))
        events.append(PaymentConfirmed(**base, occurred_at=step(0.3), payment_id=f"p-{code}", amount=Decimal(8000),
                                       channel=rng.choice(["online", "counter"]), provider="paygov"))  # fmt: skip
    if rng.random() < 0.25:  # paused for additions; resumed (new deadline) or still paused
        events.append(CaseSupplementRequested(**base, occurred_at=step(24), reason="Thiếu giấy tờ", remaining_working_days=3))
        if rng.random() < 0.7:
            back = step(rng.choice([24, 72, 400]))
            due = (back + timedelta(days=rng.choice([3, 10]))).replace(hour=17, minute=0)
            events.append(CaseClockResumed(**base, occurred_at=back, supplemented_at=back, due_at=due, remaining_working_days=3))
            if rng.random() < 0.2:
                events.append(CaseSupplementRequested(**base, occurred_at=step(24), reason="Thiếu lần 2", supplement_number=2,
                                                      marks_late=True))  # fmt: skip
    if rng.random() < 0.15 and t < due - timedelta(days=1):
        events.append(CaseApologyIssued(**base, occurred_at=step(2), reason="Chờ xác minh", new_appointment_at=due + timedelta(days=5),
                                        timely=True, deadline_at=due))  # fmt: skip
    if rng.random() < 0.25 and due > t:
        t = due + timedelta(minutes=5)
        events.append(CaseOverdue(**base, occurred_at=t, due_at=due, holder=officer, holder_unit="Công an xã"))
    end = rng.random()
    finish = step(rng.choice([5, 30, 100, 300, 900]))
    if end < 0.45:
        timeliness = "late" if finish > due else rng.choice(["early", "on_time"])
        events.append(CaseResultReady(**base, occurred_at=finish, finished_at=finish, timeliness=timeliness, due_at=due))
        if rng.random() < 0.3:
            events.append(DocumentSigned(**base, occurred_at=step(0.1), document_id=f"d-{code}", signer="Chủ tịch UBND",
                                         certificate_serial="5A01"))  # fmt: skip
        if rng.random() < 0.6:
            back = step(rng.choice([2, 50, 700]))
            events.append(CaseReturned(**base, occurred_at=back, returned_at=back, return_channel=rng.choice(["counter", "postal"]),
                                       timeliness=timeliness, finished_at=finish))  # fmt: skip
        if rng.random() < 0.3:
            events.append(CaseRated(**base, occurred_at=step(rng.choice([3, 600])),
                                    rating=rng.choice(["very_satisfied", "satisfied", "dissatisfied"])))  # fmt: skip
    elif end < 0.55:
        events.append(CaseRejected(**base, occurred_at=finish, reason="Không đủ điều kiện", timeliness=rng.choice([None, "on_time"])))
    elif end < 0.6:
        events.append(CaseStopped(**base, occurred_at=finish, reason="Dừng xử lý"))
    elif end < 0.7:
        events.append(DossierWithdrawn(**base, occurred_at=finish, reason="rút"))
    if rng.random() < 0.1:
        fid = f"fb-{code}"
        events.append(CaseFeedbackReceived(**base, occurred_at=step(10), feedback_id=fid, channel="counter", due_at=t + timedelta(days=10)))
        events.append(CaseFeedbackAnswered(**base, occurred_at=step(50), feedback_id=fid, answered_at=t, timeliness="on_time"))
    return events


def _generate(province: str, dossiers: int, seed: int) -> list[Event]:
    """Every event of the province, in the order they happened, some producers' overtaking intake's receipt."""
    rng = random.Random(seed)
    units = _units(province)
    streams = [_dossier(rng, f"{province}-{i:05d}", rng.choice(units)) for i in range(dossiers)]
    for stream in streams[:: 17]:  # a workflow fact that reaches reporting before the receipt
        if len(stream) > 1 and not isinstance(stream[1], DossierReceived):
            stream[0], stream[1] = stream[1], stream[0]
    order = sorted(
        ((e.occurred_at, i, n, e) for i, stream in enumerate(streams) for n, e in enumerate(stream)), key=lambda x: (x[0], x[1], x[2])
    )
    # a stream's own order wins over the clock (the swapped pairs above)
    by_stream: dict[int, list[Event]] = {i: list(s) for i, s in enumerate(streams)}
    return [by_stream[i].pop(0) for _, i, _, _ in order]


def _batches(events: list[Event], rng: random.Random) -> list[list[Event]]:
    """The events cut into transactions the way the consumer applies a partition's batch: one to a few dozen each."""
    out, i = [], 0
    while i < len(events):
        size = rng.choice([1, 1, 2, 5, 20, 40])
        out.append(events[i : i + size])
        i += size
    return out


@pytest.fixture(scope="module")
async def province(postgres: EmbeddedPostgres) -> AsyncIterator[tuple[Database, str]]:
    """A fresh reporting database with a generated province fed through the handlers.

    Some transactions hold one event, most a consumer batch of several (the roll-up written once at their commit,
    a dossier's consecutive events merged), some reaching into the next month (rolled forward mid-transaction).
    """
    migrated = await service_database(postgres, "reporting", namespace())
    await migrated.dispose()
    clock = ManualClock(datetime(2030, 3, 1, tzinfo=VN))
    db = Database(migrated.url, service="reporting", namespace=migrated.namespace, clock=clock, pool_size=4)
    province = f"Q{uuid.uuid4().hex[:5].upper()}"
    deps = _deps(db)
    events = [e for e in _generate(province, DOSSIERS, seed=20300601) if e.occurred_at < datetime(2030, 9, 1, tzinfo=VN)]
    for batch in _batches(events, random.Random(7)):
        async with db.unit_of_work() as tx:
            for event in batch:
                clock.set(max(clock.now(), event.occurred_at))  # the first event of each month rolls the roll-up forward
                env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=event.occurred_at, traceparent=None, actor="it")
                await handlers.on_dossier_event(tx, event, env, deps=deps)
    yield db, province
    await db.dispose()


def _deps(db: Database) -> ReportingDeps:
    """Reporting's dependencies with this module's procedure fields and report rules."""
    settings = ReportingSettings(procedure_fields=FIELDS)
    return ReportingDeps(db=db, clock=db.clock, settings=settings, rules=RULES, horizons=domain.Horizons(RULES))


def _scopes(province: str) -> list[domain.Scope]:
    # the province, two districts (01.Q is 000.00.01.Q), two communes; and a district's own office alone
    texts = [province, f"01.{province}", f"000.00.02.{province}", f"000.02.01.{province}", f"000.03.03.{province}"]
    scopes = [domain.parse_scope(t) for t in texts]
    return scopes + [domain.Scope(code=f"000.00.02.{province}", province=province, unit=f"000.00.02.{province}")]


async def _both(db: Database, **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with db.sessions() as session:
        return (
            await store.report_counts(session=session, **kwargs),
            await store.report_counts(session=session, rollup=False, **kwargs),
        )


def _horizon(month: date) -> datetime:
    return domain.Horizons(RULES)(month)


async def _rollup_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.sessions() as session:
        rows = await session.execute(sa.text("SELECT * FROM report_rollup WHERE dossiers <> 0 ORDER BY month, unit, procedure_code, "
                                             "procedure_name, field, officer"))  # fmt: skip
        groups = await session.execute(sa.text("SELECT * FROM report_rollup_groups WHERE dossiers <> 0 ORDER BY month, dim, unit, key, name"))
        return [tuple(r) for r in rows.all()] + [tuple(r) for r in groups.all()]


async def test_every_month_of_every_unit_level_reads_the_same_from_the_roll_up(province: tuple[Database, str]) -> None:
    db, code = province
    checked = 0
    for month in MONTHS:
        period = domain.month_period(month)
        async with db.sessions() as session:
            assert await store.rollup_usable(session=session, month=month, horizon=_horizon(month))
        for scope in _scopes(code):
            for by in ("none", "field", "procedure", "officer"):
                rolled, counted = await _both(db, scope=scope, period=period, horizon=_horizon(month), by=by)
                assert rolled == counted, (month, scope, by)
                checked += len(counted)
            for filters in ({"field": "Hộ tịch"}, {"procedure": "1.004194"}, {"field": "Cư trú", "procedure": "1.004194"}):
                for by in ("none", "officer"):  # per-unit groups of one key, or the full rows
                    rolled, counted = await _both(db, scope=scope, period=period, horizon=_horizon(month), by=by, **filters)
                    assert rolled == counted, (month, scope, by, filters)
    assert checked > 200  # the data set is not empty: most scopes, months and groups have dossiers


async def test_the_data_set_has_every_kind_of_dossier_the_roll_up_must_get_right(province: tuple[Database, str]) -> None:
    db, code = province
    rolled, _ = await _both(db, scope=domain.parse_scope(code), period=domain.month_period(date(2030, 6, 1)), horizon=_horizon(date(2030, 6, 1)))
    june = rolled[0]
    for figure in ("carried_over", "pending_paused", "pending_overdue", "resolved_late", "withdrawn_late", "supplement_requested",
                   "pending_near_due", "ratings_total", "apologies_issued", "postal_returned", "identified_vneid",
                   "identified_chip_card", "online_identified", "population_data_used"):  # fmt: skip
        assert june[figure] > 0, figure
    # Open dossiers idle since before August were rolled forward into August; those idle in September are read from
    # their own rows (September is after the month the roll-up reaches).
    async with db.sessions() as session:
        idle = await session.scalar(sa.text(
            "SELECT count(*) FROM dossier_facts WHERE closed_at IS NULL AND greatest(last_activity_at, received_at) < '2030-08-01+07'"
        ))  # fmt: skip
        assert await store.rolled_through(session=session) == LAST_EVENT_MONTH
    assert idle and idle > 0


async def test_a_month_counted_with_another_near_due_horizon_is_read_from_the_dossiers(province: tuple[Database, str]) -> None:
    db, code = province
    month = date(2030, 6, 1)
    other = _horizon(month) + timedelta(days=3)
    async with db.sessions() as session:
        assert not await store.rollup_usable(session=session, month=month, horizon=other)
    rolled, counted = await _both(db, scope=domain.parse_scope(code), period=domain.month_period(month), horizon=other)
    assert rolled == counted


async def test_a_rebuild_counts_the_same_roll_up_and_the_same_figures(province: tuple[Database, str]) -> None:
    db, code = province
    kept = await _rollup_rows(db)
    period = domain.month_period(date(2030, 5, 1))
    before, _ = await _both(db, scope=domain.parse_scope(code), period=period, horizon=_horizon(date(2030, 5, 1)), by="procedure")
    async with db.unit_of_work(actor="reporting-rebuild") as tx:
        replayed = await handlers.rebuild(tx, deps=_deps(db))
    assert replayed > 200
    assert await _rollup_rows(db) == kept
    after, counted = await _both(db, scope=domain.parse_scope(code), period=period, horizon=_horizon(date(2030, 5, 1)), by="procedure")
    assert after == before == counted
