"""A unit's public month (công khai) in a real browser, against the report's own figures.

Intake, workflow and reporting run as processes on a stack of their own, whose clocks this module moves (as
test_reporting_flow.py does): in the month after the current one, a unit receives three dossiers. One is held by an
official, gets an apology (Form 04) and a new appointment, goes past its deadline and is resolved late; one is resolved
early and returned; one, of a procedure whose name is hostile markup, stays open past its deadline. Digitization and
payments are not running: the test publishes their CloudEvents (the signed result, the fee) as they would. Then the
clocks move into the next month, so that the month is over and published.

Chromium opens ``/trang/cong-khai/{unit}/{yyyy-mm}``; the figures read from the page equal the JSON summary of the same
unit and month, the late dossiers listed are the accountability list's (with the apology), and no applicant or official
is named. Bad months, unknown units and months not over yet are Vietnamese error pages; the public rate limit applies.
Screenshots at 360 px and 1280 px go to test-artifacts/pages/reporting-*.png.
"""

from __future__ import annotations

import asyncio
import time as clock
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.calendar import WorkingCalendar
from shared.envelope import Envelope
from shared.events import DocumentSigned, Event, PaymentConfirmed, PaymentRequested
from shared.pages import CONTENT_SECURITY_POLICY
from tests.support.browser import assert_page_for_people, recorded, screenshots
from tests.support.stack import Stack, eventually, random_unit

pytest_plugins = ("tests.support.browser_plugin",)
pytestmark = pytest.mark.timeout(900)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkingCalendar()
SERVICES = ("intake", "workflow", "reporting")
UNIT = random_unit()
UNIT_NAME = "UBND phường Bến Thành"
SCRIPT = "<script>alert(1)</script>"
HOSTILE_PROCEDURE = f"Xác nhận tình trạng nhà ở {SCRIPT}"
APPLICANTS = {"late": "Trần Thị Bích Ngọc", "early": "Lê Văn Tám", "open": "Hoàng Thị Mai Phương"}
OFFICIALS = ("cb-tre-han", "cb-som", "lanh-dao-ct", "mot-cua-1")
DEPARTMENT = "Phòng Quản lý đô thị"
# Reporting's public budget in this module: a burst of 10, refilled at 5 a second. A flood runs it dry (429); two
# seconds later it is full again, so the tests, in whatever order they run, find it as they expect.
PUBLIC_BURST, PUBLIC_RATE = 10, 5.0


def day_at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=VN)


def month_label(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def first_of_next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def short(at: str | datetime) -> str:
    """A date as the page prints it: 05/03/2026, in Vietnam."""
    instant = datetime.fromisoformat(at) if isinstance(at, str) else at
    local = instant.astimezone(VN).date()
    return f"{local.day:02d}/{local.month:02d}/{local.year}"


def count_of(text: str) -> int:
    """ "1.234" as the page prints a count."""
    return int(text.strip().replace(".", ""))


def rate_of(text: str) -> float | None:
    """ "97,5%" as the page prints a rate; None for "chưa có hồ sơ"."""
    text = text.strip()
    return None if text == "chưa có hồ sơ" else float(text.removesuffix("%").replace(",", "."))


@dataclass
class Published:
    """The month the module drove, and what the JSON reports say of it."""

    stack: Stack
    unit: str
    month: str  # YYYY-MM
    following: str  # the month after it: not over yet
    codes: dict[str, str]  # late, early, open -> dossier code
    apology: dict[str, Any]
    summary: dict[str, Any]
    late: dict[str, Any]

    @property
    def url(self) -> str:
        return self.stack.url("reporting")

    def page(self, unit: str | None = None, month: str | None = None) -> str:
        return f"{self.url}/trang/cong-khai/{unit or self.unit}/{month or self.month}"


class Office:
    """The unit's officials and the helpers the module drives them with (as in test_reporting_flow.py)."""

    def __init__(self, stack: Stack, producer: AIOKafkaProducer) -> None:
        self.stack, self.producer = stack, producer

    def client(self, service: str, role: str, subject: str, units: list[str] | None = None) -> httpx.AsyncClient:
        token = self.stack.token(role, units=units or [UNIT], subject=subject)
        return httpx.AsyncClient(base_url=self.stack.url(service), headers={"Authorization": f"Bearer {token}"}, timeout=20)

    async def move_clocks(self, to: datetime) -> None:
        for service in SERVICES:
            async with self.client(service, "admin", "ops", units=["*"]) as admin:
                response = await admin.put("/api/v1/admin/clock", json={"now": to.isoformat()})
            assert response.status_code == 200, response.text

    async def receive(self, applicant: str, procedure: str = "1.004194") -> dict:
        async with self.client("intake", "clerk", "mot-cua-1") as clerk:
            response = await clerk.post("/api/v1/dossiers", json={"procedure_code": procedure, "applicant_name": applicant})
        assert response.status_code == 201, response.text
        return response.json()

    async def case(self, code: str, predicate: Callable[[dict], bool] = lambda c: True) -> dict:
        async with self.client("workflow", "auditor", "kiem-tra") as auditor:

            async def probe() -> dict | None:
                response = await auditor.get(f"/api/v1/cases/{code}")
                return response.json() if response.status_code == 200 and predicate(response.json()) else None

            return await eventually(probe)

    async def act(self, role: str, subject: str, code: str, action: str, body: dict | None = None) -> dict:
        async with self.client("workflow", role, subject) as official:
            response = await official.post(f"/api/v1/cases/{code}/{action}", json=body or {})
        assert response.status_code == 200, f"{action}: {response.text}"
        return response.json()

    async def sign_and_pay(self, code: str, now: datetime) -> None:
        """Digitization signs the result and payments collects the fee; then only the approval is missing."""
        case = await self.case(code)
        events: list[Event] = [
            DocumentSigned(dossier_code=code, unit=UNIT, occurred_at=now, document_id=f"kq-{uuid.uuid4().hex[:8]}",
                           signer="Chủ tịch UBND", certificate_serial="54A1")
        ]  # fmt: skip
        if case["fee_due_amount"]:
            amount, payment = Decimal(case["fee_due_amount"]), f"tt-{uuid.uuid4().hex[:8]}"
            events += [
                PaymentRequested(dossier_code=code, unit=UNIT, occurred_at=now, payment_id=payment, amount=amount),
                PaymentConfirmed(dossier_code=code, unit=UNIT, occurred_at=now, payment_id=payment, amount=amount, channel="counter"),
            ]
        for event in events:
            env = Envelope.wrap(event, source=f"/motcua/{event.producer}", time=event.occurred_at, traceparent=None, actor="e2e")
            await self.producer.send_and_wait(self.stack.topic(event.producer), key=env.subject.encode(),
                                              value=env.kafka_value(), headers=env.kafka_headers())  # fmt: skip
        await self.case(code, lambda c: c["result_gate"]["missing"] == ["approval"])


@pytest.fixture(scope="module")
async def office_stack(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake, workflow and reporting whose clocks this module moves; reporting names the unit and has a small budget."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("pages-reporting")), services=list(SERVICES),
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1"},
    )  # fmt: skip
    reporting_env = {
        "REPORTING_UNIT_NAMES": f'{{"{UNIT}": "{UNIT_NAME}"}}',
        "REPORTING_RATE_LIMIT_PUBLIC_PER_SECOND": str(PUBLIC_RATE),
        "REPORTING_RATE_LIMIT_PUBLIC_BURST": str(PUBLIC_BURST),
    }
    await stack.start(extra_env={"reporting": reporting_env})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def published(office_stack: Stack) -> Published:
    """The month after the current one, driven through the real services, then closed by moving into the next."""
    producer = AIOKafkaProducer(bootstrap_servers=office_stack.broker.bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        return await _drive(Office(office_stack, producer))
    finally:
        await producer.stop()


async def _drive(o: Office) -> Published:
    month_first = first_of_next_month(datetime.now(VN).date())
    w1 = CAL.next_working(month_first - timedelta(days=1))  # the month's first working day
    await o.move_clocks(day_at(w1, 8))

    hostile = f"9.{int(clock.time() * 1000) % 1_000_000:06d}"
    definition = {"name": HOSTILE_PROCEDURE, "field": "Xây dựng", "online_level": "full",
                  "time_limit": {"amount": 3, "unit": "WORKING_DAY"}, "components": [{"name": "Đơn đề nghị"}]}  # fmt: skip
    async with o.client("intake", "admin", "quan-tri", units=["*"]) as admin:
        published = await admin.post(f"/api/v1/procedures/{hostile}/versions", json={"effective_from": "2020-01-01", "definition": definition})
    assert published.status_code == 201, published.text

    late, early = await o.receive(APPLICANTS["late"]), await o.receive(APPLICANTS["early"])
    still_open = await o.receive(APPLICANTS["open"], procedure=hostile)
    codes = {"late": late["code"], "early": early["code"], "open": still_open["code"]}
    late_due = datetime.fromisoformat((await o.case(codes["late"]))["due_at"])
    open_due = datetime.fromisoformat((await o.case(codes["open"]))["due_at"])

    # The late one: held by an official of a department, an apology and a new appointment before its deadline.
    await o.act("specialist", "cb-tre-han", codes["late"], "assign", {"department": DEPARTMENT, "assignee": "me"})
    apology = await o.act("specialist", "cb-tre-han", codes["late"], "apology",
                          {"reason": "Chờ kết quả xác minh của cơ quan phối hợp",
                           "new_appointment_at": (late_due + timedelta(days=7)).isoformat()})  # fmt: skip
    assert apology["apology_timely"] is True
    # The early one: signed, paid, approved and returned on its first day.
    await o.case(codes["early"])
    await o.act("specialist", "cb-som", codes["early"], "assign", {"assignee": "me"})
    await o.sign_and_pay(codes["early"], day_at(w1, 8, 30))
    assert (await o.act("leader", "lanh-dao-ct", codes["early"], "approve"))["timeliness"] == "early"
    await o.act("clerk", "mot-cua-1", codes["early"], "return", {"channel": "counter"})

    # Both deadlines pass (the sweep announces them); the late one is then resolved and returned.
    late_day = CAL.next_working(max(late_due, open_due).astimezone(VN).date())
    assert late_day.month == month_first.month, f"{late_day} leaves the month {month_label(month_first)}"
    await o.move_clocks(day_at(late_day, 10))
    await o.case(codes["late"], lambda c: c["overdue_sent_at"] is not None)
    await o.case(codes["open"], lambda c: c["overdue_sent_at"] is not None)
    await o.sign_and_pay(codes["late"], day_at(late_day, 10))
    assert (await o.act("leader", "lanh-dao-ct", codes["late"], "approve"))["timeliness"] == "late"
    await o.act("clerk", "mot-cua-1", codes["late"], "return", {"channel": "counter"})

    # The month is over: the first day of the next one.
    following = first_of_next_month(month_first)
    await o.move_clocks(day_at(following, 9))

    period = {"unit": UNIT, "from": month_first.isoformat(), "to": (following - timedelta(days=1)).isoformat()}
    expected = {"carried_over": 0, "received_total": 3, "to_process": 3, "resolved_total": 2, "resolved_early": 1,
                "resolved_late": 1, "pending_total": 1, "pending_overdue": 1, "apologies_issued": 1, "withdrawn": 0}  # fmt: skip
    async with o.client("reporting", "leader", "lanh-dao-xem") as leader:
        seen: dict[str, Any] = {}

        async def counted() -> bool:
            response = await leader.get("/api/v1/reports/summary", params=period)
            assert response.status_code == 200, response.text
            seen.clear()
            seen.update(response.json())
            return {k: seen[k] for k in expected} == expected

        try:
            await eventually(counted, timeout=60)
        finally:
            assert {k: seen.get(k) for k in expected} == expected
        late_list = (await leader.get("/api/v1/reports/late", params=period)).json()
    return Published(
        stack=o.stack, unit=UNIT, month=month_label(month_first), following=month_label(following), codes=codes,
        apology=apology, summary=seen, late=late_list,
    )  # fmt: skip


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


FIGURES = (
    "carried_over", "received_total", "received_online", "to_process", "resolved_total", "resolved_early",
    "resolved_on_time", "resolved_late", "withdrawn", "pending_total", "pending_overdue", "apologies_issued",
)  # fmt: skip
RATES = ("on_time", "early", "late")


async def figures(page: Page) -> tuple[dict[str, int], dict[str, float | None]]:
    """The counts and the rates as the page shows them, by the report's names (each exactly once)."""
    counts = [(await cell.get_attribute("data-count"), count_of(await cell.inner_text()))
              for cell in await page.locator("[data-count]").all()]  # fmt: skip
    rates = [(await cell.get_attribute("data-rate"), rate_of(await cell.inner_text()))
             for cell in await page.locator("[data-rate]").all()]  # fmt: skip
    assert sorted(k for k, _ in counts) == sorted(FIGURES) and sorted(k for k, _ in rates) == sorted(RATES)
    return {k: v for k, v in counts if k}, {k: v for k, v in rates if k}


async def test_the_public_month_shows_the_reports_figures_and_the_late_dossiers(browser_page: Page, published: Published) -> None:
    response = await browser_page.goto(published.page())
    assert response is not None and response.status == 200
    headers = await response.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/html")
    year, number = published.month.split("-")
    assert await browser_page.title() == (
        f"Công khai kết quả giải quyết thủ tục hành chính tháng {number}/{year} – Bộ phận Một cửa"
    )
    assert await text_of(browser_page, ".site-header .unit-name") == UNIT_NAME
    assert (await text_of(browser_page, "#ky")).startswith(f"Tháng {number} năm {year}")

    # Every figure on the page is the JSON summary's for the same unit and month.
    shown, rates = await figures(browser_page)
    assert shown == {key: published.summary[key] for key in FIGURES}
    assert rates == {key: published.summary["rates"][key]["percent"] for key in RATES}
    assert rates["on_time"] == pytest.approx(100 / 3, abs=0.005)  # of three to process, two went late

    # The late dossiers are the accountability list's: the resolved late one with its apology, the open one.
    listed = [await article.get_attribute("data-code") for article in await browser_page.locator("article.late").all()]
    assert sorted(listed) == sorted(row["code"] for row in published.late["data"])
    assert sorted(listed) == sorted([published.codes["late"], published.codes["open"]])
    assert (await text_of(browser_page, "#so-tre-han")) == "Có 2 hồ sơ trễ hạn."
    late = browser_page.locator(f'article.late[data-code="{published.codes["late"]}"]')
    assert (await late.locator(".tinh-trang").inner_text()).startswith("Đã giải quyết, trễ hạn (ngày ")
    apology_at = short(published.late["data"][[r["code"] for r in published.late["data"]].index(published.codes["late"])]["apology_at"])
    assert await late.locator(".xin-loi").inner_text() == (
        f"Đã gửi ngày {apology_at}, hẹn lại ngày trả kết quả {short(published.apology['due_at_rescheduled'])}"
    )
    assert "Đăng ký tạm trú" in await late.locator(".thu-tuc").inner_text()
    still_open = browser_page.locator(f'article.late[data-code="{published.codes["open"]}"]')
    assert await still_open.locator(".tinh-trang").inner_text() == "Đang giải quyết, đã quá hạn"
    assert await still_open.locator(".xin-loi").inner_text() == "Chưa gửi"
    # A hostile procedure name is text, and nothing ran.
    assert HOSTILE_PROCEDURE in await still_open.locator(".thu-tuc").inner_text()
    assert await browser_page.locator("script").count() == 0
    await asyncio.sleep(0.3)
    assert recorded(browser_page).dialogs == []

    # No applicant and no official is named; the department that held the late one is not either (the officials'
    # accountability list names both).
    held = next(r for r in published.late["data"] if r["code"] == published.codes["late"])
    assert (held["holder_unit"], held["holder_officer"]) == (DEPARTMENT, "cb-tre-han")
    html = await browser_page.content()
    for name in (*APPLICANTS.values(), *OFFICIALS, DEPARTMENT):
        assert name not in html, f"the public page shows {name!r}"

    # The month before is linked; the month after is not over, so not linked.
    links = {await a.get_attribute("rel"): await a.get_attribute("href") for a in await browser_page.locator("nav.months a").all()}
    assert set(links) == {"prev"}
    await assert_page_for_people(browser_page, origin=published.url)
    assert not recorded(browser_page).console_errors
    narrow, wide = await screenshots(browser_page, "reporting-public-month")
    assert narrow.exists() and wide.exists()


async def test_the_board_opens_on_the_last_month_over_and_links_the_one_before(browser_page: Page, published: Published) -> None:
    response = await browser_page.goto(f"{published.url}/trang/cong-khai/{published.unit}")
    assert response is not None and response.status == 200
    assert browser_page.url == published.page()

    year, number = (int(x) for x in published.month.split("-"))
    before = date(year, number, 1) - timedelta(days=1)
    await browser_page.get_by_role("link", name=f"Xem tháng trước ({before.month:02d}/{before.year})").click()
    await browser_page.wait_for_url(published.page(month=month_label(before)))
    period = {"unit": published.unit, "from": before.replace(day=1).isoformat(), "to": before.isoformat()}
    async with published.stack.client("reporting", "leader", units=[published.unit]) as leader:
        summary = (await leader.get("/api/v1/reports/summary", params=period)).json()
    shown, rates = await figures(browser_page)
    assert shown == {key: summary[key] for key in FIGURES} == dict.fromkeys(FIGURES, 0)
    assert rates == {key: summary["rates"][key]["percent"] for key in RATES} == dict.fromkeys(RATES, None)
    assert await text_of(browser_page, "#so-tre-han") == "Trong tháng không có hồ sơ trễ hạn."
    links = {await a.get_attribute("rel"): await a.inner_text() for a in await browser_page.locator("nav.months a").all()}
    assert links["next"] == f"Xem tháng sau ({number:02d}/{year})"
    await assert_page_for_people(browser_page, origin=published.url)
    await screenshots(browser_page, "reporting-public-month-empty")


async def test_the_page_is_not_in_the_openapi_document(published: Published) -> None:
    async with httpx.AsyncClient(base_url=published.url) as anyone:
        document = (await anyone.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/trang")]


@pytest.mark.parametrize(
    ("case", "status", "title"),
    [
        ("bad-month", 422, "Tháng không hợp lệ"),
        ("unknown-unit", 404, "Không tìm thấy đơn vị"),
        ("month-not-over", 404, "Chưa công khai số liệu tháng này"),
    ],
)
async def test_bad_addresses_are_vietnamese_error_pages(browser_page: Page, published: Published, case: str, status: int, title: str) -> None:
    url = {
        "bad-month": published.page(month=f"{published.month[:4]}-13"),
        "unknown-unit": published.page(unit=random_unit()),
        "month-not-over": published.page(month=published.following),
    }[case]
    response = await browser_page.goto(url)
    assert response is not None and response.status == status
    assert (await response.all_headers())["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert await text_of(browser_page, "h1") == title
    assert await browser_page.title() == f"{title} – Bộ phận Một cửa"
    assert await text_of(browser_page, ".error-code") == f"Lỗi {status}"
    await assert_page_for_people(browser_page, origin=published.url)
    await screenshots(browser_page, f"reporting-public-month-{case}")


async def test_the_public_rate_limit_applies(browser_page: Page, published: Published) -> None:
    async with httpx.AsyncClient(base_url=published.url, timeout=30) as anyone:
        # Three bursts at once, far faster than the refill: the bucket runs dry and the rest are refused.
        answers = await asyncio.gather(
            *(anyone.get(f"/trang/cong-khai/{published.unit}/{published.month}") for _ in range(3 * PUBLIC_BURST))
        )
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {200, 429} and statuses.count(200) >= PUBLIC_BURST, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert int(refused.headers["retry-after"]) >= 1
        assert "Quá nhiều yêu cầu" in refused.text
        await asyncio.sleep(PUBLIC_BURST / PUBLIC_RATE)  # the bucket is full again for the other tests
    response = await browser_page.goto(published.page())
    assert response is not None and response.status == 200
