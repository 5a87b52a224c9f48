"""Fees from reception to receipt: assessment, VietQR, signed confirmations, cash, held transfers,
reconciliation, receipts and refunds, with intake and payments as real processes."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import random
import time
import unicodedata
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import zxingcpp
from aiokafka import AIOKafkaConsumer, TopicPartition
from PIL import Image
from pypdf import PdfReader

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.payments import domain
from shared.webhooks import signature as webhook_signature
from tests.support.stack import Stack, eventually

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BANK_SECRET = "vietinbank-callback-secret-5b1e9c"
BIDV_SECRET = "bidv-callback-secret-0c44d2a1"
PAYGOV_SECRET = "paygov-callback-secret-77aa10"
PORTAL_SECRET = "portal-test-secret-payments-3e"
DEFAULT_ACCOUNT = {"bin": "970415", "account": "113366668888"}
SPECIAL_UNIT = "000.00.12.H56"
SPECIAL_ACCOUNT = {"bin": "970436", "account": "0071000123456"}
CITIZEN = {"kind": "citizen", "name": "Nguyễn Thị Hồng Nhung", "id_number": "001203004567"}
_units = itertools.count(random.randrange(10_000))


def fee_unit() -> str:
    """A unit code of QCVN 102 length (13), unique in this module, so its dossier codes fit a VietQR bill number."""
    n = next(_units)
    return f"000.00.{n % 100:02d}.P{n // 100 % 100:02d}"


@pytest.fixture(scope="module")
async def shop(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake and payments, with collection accounts, three providers' secrets and the portal's."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("payments")), services=["intake", "payments"],
        env={
            "INTAKE_PORTAL_WEBHOOK_SECRET": PORTAL_SECRET,
            "PAYMENTS_COLLECTION_ACCOUNT": json.dumps(DEFAULT_ACCOUNT),
            "PAYMENTS_UNIT_COLLECTION_ACCOUNTS": json.dumps({SPECIAL_UNIT: SPECIAL_ACCOUNT}),
            "PAYMENTS_CALLBACK_SECRETS": json.dumps({"vietinbank": BANK_SECRET, "bidv": BIDV_SECRET, "paygov": PAYGOV_SECRET}),
            "PAYMENTS_UNIT_NAMES": json.dumps({SPECIAL_UNIT: "UBND phường Phú Hội"}, ensure_ascii=False),
        },
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


# ---- helpers ---------------------------------------------------------------------------------


async def receive(stack: Stack, unit: str, **body: object) -> dict:
    """A clerk accepts a dossier at the counter (tạm trú unless told otherwise)."""
    async with stack.client("intake", "clerk", units=[unit]) as clerk:
        response = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def payments_of(stack: Stack, code: str, *, count: int = 1, status: str | None = None) -> list[dict]:
    """The dossier's payments once payments has requested ``count`` of them (and they reach ``status``)."""
    async with stack.client("payments", "specialist", units=["*"]) as official:

        async def _probe() -> list[dict] | None:
            body = (await official.get("/api/v1/payments", params={"dossier_code": code})).json()
            data = body["data"]
            if len(data) < count or (status and any(p["status"] != status for p in data)):
                return None
            return data

        return await eventually(_probe)


async def assessment(stack: Stack, code: str) -> dict:
    """What payments assessed for the dossier, once it knows it."""
    async with stack.client("payments", "specialist", units=["*"]) as official:

        async def _probe() -> dict | None:
            response = await official.get(f"/api/v1/fee-assessments/{code}")
            return response.json() if response.status_code == 200 else None

        return await eventually(_probe)


async def payment(stack: Stack, payment_id: str) -> dict:
    async with stack.client("payments", "auditor", units=["*"]) as auditor:
        response = await auditor.get(f"/api/v1/payments/{payment_id}")
    assert response.status_code == 200, response.text
    return response.json()


def signed(body: dict, *, secret: str = BANK_SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return raw, {"X-Provider-Timestamp": timestamp, "X-Provider-Signature": "sha256=" + webhook_signature(secret, timestamp, raw),
                 "Content-Type": "application/json"}  # fmt: skip


async def callback(stack: Stack, body: dict, *, provider: str = "vietinbank", secret: str = BANK_SECRET, **kwargs: object) -> httpx.Response:
    raw, headers = signed(body, secret=secret, **kwargs)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=stack.url("payments"), timeout=30) as bank:
        return await bank.post(f"/api/v1/payments/callbacks/{provider}", content=raw, headers=headers)


def transfer(payment_id: str, amount: int, *, txn: str | None = None, **extra: object) -> dict:
    """A bank's credit notice: the memo carries the payment id the QR put in the purpose."""
    return {"transaction_id": txn or f"FT{time.time_ns()}", "amount": amount, "currency": "VND",
            "reference": f"{payment_id} DANG KY TAM TRU", **extra}  # fmt: skip


async def events_of(stack: Stack, type_: str, payment_id: str) -> list[dict]:
    """Every event of a type about a payment on payments' topic, read from the beginning to the end."""
    reader = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap_servers, enable_auto_commit=False)
    await reader.start()
    try:
        topic = stack.topic("payments")
        partitions = []
        for _ in range(50):
            await reader.topics()
            if found := reader.partitions_for_topic(topic):
                partitions = [TopicPartition(topic, p) for p in sorted(found)]
                break
            await asyncio.sleep(0.1)
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        found_events = []

        async def _behind() -> bool:
            return any([await reader.position(tp) < ends[tp] for tp in partitions])

        while await _behind():
            for batch in (await reader.getmany(timeout_ms=500)).values():
                for record in batch:
                    headers = {k: v.decode() for k, v in record.headers}
                    body = json.loads(record.value)
                    if headers.get("ce_type") == type_ and body.get("payment_id") == payment_id:
                        found_events.append(body)
        return found_events
    finally:
        await reader.stop()


async def settled_events(stack: Stack, type_: str, payment_id: str, *, at_least: int = 1) -> list[dict]:
    """The events once the relay has published at least one, after a moment for stragglers."""
    await eventually(lambda: _enough(stack, type_, payment_id, at_least), timeout=30, interval=0.5)
    await asyncio.sleep(1.5)
    return await events_of(stack, type_, payment_id)


async def _enough(stack: Stack, type_: str, payment_id: str, at_least: int) -> bool:
    return len(await events_of(stack, type_, payment_id)) >= at_least


def decode_png(png: bytes) -> str:
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    return barcode.text


# ---- assessment and VietQR -------------------------------------------------------------------


async def test_a_fee_bearing_dossier_gets_a_payment_request_whose_qr_a_real_reader_decodes(shop: Stack) -> None:
    dossier = await receive(shop, SPECIAL_UNIT)
    code = dossier["code"]
    assert len(code) == 25
    [requested] = await payments_of(shop, code)
    assert requested["status"] == "pending" and requested["amount"] == 15_000 and requested["currency"] == "VND"
    assert requested["lines"] == [{"code": "CT-TTU", "name": "Lệ phí đăng ký tạm trú", "quantity": 1, "amount": 15_000, "exempted_by": None}]
    assert requested["basis"] == "reception" and requested["unit"] == SPECIAL_UNIT
    async with shop.client("payments", "clerk", units=[SPECIAL_UNIT]) as clerk:
        png = await clerk.get(f"/api/v1/payments/{requested['id']}/qr.png")
        svg = await clerk.get(f"/api/v1/payments/{requested['id']}/qr.svg")
        one = await clerk.get(f"/api/v1/payments/{requested['id']}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    scanned = decode_png(png.content)
    assert scanned == requested["qr_payload"] == one.json()["qr_payload"]
    fields = domain.decode(scanned)
    assert (fields["bank_bin"], fields["account"]) == (SPECIAL_ACCOUNT["bin"], SPECIAL_ACCOUNT["account"])
    assert fields["amount"] == 15_000 and fields["currency"] == "704" and fields["dynamic"]
    assert fields["bill_number"] == code
    assert fields["purpose"].startswith(requested["id"])
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content


async def test_the_default_collection_account_serves_units_without_their_own(shop: Stack) -> None:
    code = (await receive(shop, fee_unit()))["code"]
    [requested] = await payments_of(shop, code)
    fields = domain.decode(requested["qr_payload"])
    assert (fields["bank_bin"], fields["account"]) == (DEFAULT_ACCOUNT["bin"], DEFAULT_ACCOUNT["account"])


async def test_an_online_dossier_pays_the_lower_online_amount(shop: Stack) -> None:
    unit = fee_unit()
    body = {"portal_dossier_id": f"DVC-{time.time_ns()}", "unit": unit, "procedure_code": "1.004194", "applicant": CITIZEN,
            "submitted_at": datetime.now(VN).isoformat(), "return_channel": "online"}  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {"X-Portal-Timestamp": timestamp, "X-Portal-Signature": webhook_signature(PORTAL_SECRET, timestamp, raw),
               "Content-Type": "application/json"}  # fmt: skip
    async with httpx.AsyncClient(base_url=shop.url("intake")) as portal:
        response = await portal.post("/api/v1/portal/dossiers", content=raw, headers=headers)
    assert response.status_code == 201, response.text
    [requested] = await payments_of(shop, response.json()["code"])
    assert requested["amount"] == 7_000


async def test_free_and_exempt_dossiers_need_no_payment_and_copies_multiply(shop: Stack) -> None:
    unit = fee_unit()
    free = (await receive(shop, unit, procedure_code="1.001193"))["code"]
    exempt = (await receive(shop, unit, procedure_code="2.000635", copies=3, exemption="poor_household"))["code"]
    charged = (await receive(shop, unit, procedure_code="2.000635", copies=3))["code"]
    [extracts] = await payments_of(shop, charged)
    assert extracts["amount"] == 24_000 and extracts["lines"][0]["quantity"] == 3
    for code in (free, exempt):
        known = await assessment(shop, code)
        assert known["assessed_at_reception"] == 0 and known["payments"] == [] and known["waiting_for_pages"] == []
    assert (await assessment(shop, exempt))["exemption"] == "poor_household"


async def test_a_per_page_fee_waits_for_the_page_count_unless_the_pages_are_given(shop: Stack) -> None:
    unit = fee_unit()
    waiting = (await receive(shop, unit, procedure_code="2.000815"))["code"]
    counted = (await receive(shop, unit, procedure_code="2.000815", pages=10))["code"]
    known = await assessment(shop, waiting)
    assert known["waiting_for_pages"] == ["CT-BS"] and known["payments"] == []
    [priced] = await payments_of(shop, counted)
    assert priced["amount"] == 12_000  # 2 pages at 2,000 and 8 at 1,000


# ---- signed confirmations ------------------------------------------------------------------------


async def test_a_signed_confirmation_pays_exactly_once_however_often_and_concurrently_it_arrives(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    notice = transfer(requested["id"], 15_000, txn=f"FT-ONCE-{time.time_ns()}")
    # 20 deliveries of the same transaction, each freshly signed (a retrying bank re-signs), all at once.
    responses = await asyncio.gather(*(callback(shop, {**notice, "delivery": i}) for i in range(20)))
    assert [r.status_code for r in responses] == [200] * 20, {r.text for r in responses if r.status_code != 200}
    bodies = [r.json() for r in responses]
    assert sum(not b["duplicate"] for b in bodies) == 1
    assert {b["outcome"] for b in bodies} == {"confirmed"} and {b["payment_status"] for b in bodies} == {"paid"}
    paid = await payment(shop, requested["id"])
    assert paid["status"] == "paid" and paid["channel"] == "online" and paid["provider"] == "vietinbank"
    assert paid["provider_transaction_id"] == notice["transaction_id"] and paid["receipt_number"]
    confirmed = await settled_events(shop, "vn.motcua.payment.confirmed.v1", requested["id"])
    assert len(confirmed) == 1
    assert confirmed[0]["channel"] == "online" and confirmed[0]["receipt_number"] == paid["receipt_number"]
    # A second, different transfer for the paid request is held: the money may be owed back.
    again = await callback(shop, transfer(requested["id"], 15_000))
    assert again.json()["outcome"] == "not_payable"
    async with shop.client("payments", "auditor", units=[unit]) as auditor:
        trail = (await auditor.get(f"/api/v1/payments/{requested['id']}/audit")).json()
    assert [(a["action"], a["to_status"]) for a in trail][:2] == [("requested", "pending"), ("confirmed", "paid")]
    assert len(await events_of(shop, "vn.motcua.payment.confirmed.v1", requested["id"])) == 1


async def test_forged_stale_replayed_unsigned_and_unknown_provider_callbacks_are_refused(shop: Stack) -> None:
    code = (await receive(shop, fee_unit()))["code"]
    [requested] = await payments_of(shop, code)
    notice = transfer(requested["id"], 15_000)
    url = "/api/v1/payments/callbacks/vietinbank"
    raw, headers = signed(notice)
    async with httpx.AsyncClient(base_url=shop.url("payments")) as bank:
        forged = await callback(shop, notice, secret="guessed-secret")
        stale = await callback(shop, notice, at=time.time() - 3600)
        unsigned = await bank.post(url, content=raw, headers={"Content-Type": "application/json"})
        unknown = await callback(shop, notice, provider="acmebank")
        malformed = await callback(shop, {"amount": "a lot"})
        first = await bank.post(url, content=raw, headers=headers)
        replayed = await bank.post(url, content=raw, headers=headers)
    assert (forged.status_code, forged.json()["type"]) == (401, "urn:motcua:problem:webhook-forged")
    assert (stale.status_code, stale.json()["type"]) == (401, "urn:motcua:problem:webhook-stale")
    assert unsigned.status_code == 401 and unknown.status_code == 404
    assert malformed.status_code == 422 and "transaction_id" in malformed.json()["detail"]
    assert first.status_code == 200 and first.json()["outcome"] == "confirmed"
    assert (replayed.status_code, replayed.json()["type"]) == (409, "urn:motcua:problem:webhook-replayed")
    assert (await payment(shop, requested["id"]))["status"] == "paid"


async def test_an_underpayment_is_recorded_and_flagged_not_confirmed(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    short = await callback(shop, transfer(requested["id"], 10_000))
    foreign = await callback(shop, transfer(requested["id"], 15_000, currency="USD"))
    assert short.status_code == 200 and short.json()["outcome"] == "amount_mismatch" and short.json()["payment_status"] == "pending"
    assert foreign.json()["outcome"] == "amount_mismatch"
    assert (await payment(shop, requested["id"]))["status"] == "pending"
    async with shop.client("payments", "clerk", units=[unit]) as clerk:
        held = (await clerk.get("/api/v1/payment-transfers/held", params={"limit": 500})).json()["data"]
    mine = [t for t in held if t["payment_id"] == requested["id"]]
    assert {t["outcome"] for t in mine} == {"amount_mismatch"} and len(mine) == 2
    assert any("underpaid: received 10000 VND, due 15000 VND" == t["note"] for t in mine)
    failed = await settled_events(shop, "vn.motcua.payment.failed.v1", requested["id"], at_least=2)
    assert {f["status"] for f in failed} == {"pending"} and {int(f["amount_received"]) for f in failed} == {10_000, 15_000}
    exact = await callback(shop, transfer(requested["id"], 15_000))
    assert exact.json()["outcome"] == "confirmed"


async def test_a_transfer_nobody_can_match_is_held_until_a_clerk_or_leader_matches_it(shop: Stack) -> None:
    unit = fee_unit()
    first, second = (await receive(shop, unit))["code"], (await receive(shop, unit))["code"]
    [p1], [p2] = await payments_of(shop, first), await payments_of(shop, second)
    memo = {"reference": "chuyen tien le phi tam tru cho con"}
    exact = await callback(shop, {**transfer("", 15_000), **memo})
    over = await callback(shop, {**transfer("", 20_000), **memo})
    assert exact.json()["outcome"] == over.json()["outcome"] == "unmatched"
    async with shop.client("payments", "clerk", units=[unit]) as clerk, shop.client("payments", "leader", units=[unit]) as leader:
        held = (await clerk.get("/api/v1/payment-transfers/held", params={"limit": 500})).json()["data"]
        by_txn = {t["provider_transaction_id"]: t for t in held}
        exact_id = by_txn[exact.json()["transaction_id"]]["id"]
        over_id = by_txn[over.json()["transaction_id"]]["id"]
        matched = await clerk.post(f"/api/v1/payment-transfers/{exact_id}/match", json={"payment_id": p1["id"], "note": "Gọi điện xác nhận"})
        twice = await clerk.post(f"/api/v1/payment-transfers/{exact_id}/match", json={"payment_id": p2["id"]})
        refused = await clerk.post(f"/api/v1/payment-transfers/{over_id}/match", json={"payment_id": p2["id"]})
        not_leader = await clerk.post(f"/api/v1/payment-transfers/{over_id}/match", json={"payment_id": p2["id"], "accept_difference": True})
        accepted = await leader.post(f"/api/v1/payment-transfers/{over_id}/match", json={"payment_id": p2["id"], "accept_difference": True})
        still_held = {t["id"] for t in (await clerk.get("/api/v1/payment-transfers/held", params={"limit": 500})).json()["data"]}
    assert matched.status_code == 200, matched.text
    assert matched.json()["status"] == "paid" and matched.json()["provider_transaction_id"] == exact.json()["transaction_id"]
    assert twice.status_code == 409
    assert refused.status_code == not_leader.status_code == 409 and refused.json()["type"].endswith("amount-mismatch")
    assert accepted.status_code == 200 and accepted.json()["status"] == "paid"
    assert exact_id not in still_held and over_id not in still_held


# ---- the counter, receipts, refunds ------------------------------------------------------------


async def test_a_clerk_takes_cash_at_the_counter_once(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    url = f"/api/v1/payments/{requested['id']}/cash"
    async with shop.client("payments", "clerk", units=[unit]) as clerk, shop.client("payments", "specialist", units=[unit]) as specialist:
        forbidden = await specialist.post(url, json={"amount": 15_000})
        wrong = await clerk.post(url, json={"amount": 10_000})
        paid = await clerk.post(url, json={"amount": 15_000, "payer_name": "Nguyễn Thị Hồng Nhung"}, headers={"Idempotency-Key": "k-1"})
        repeated = await clerk.post(url, json={"amount": 15_000}, headers={"Idempotency-Key": "k-1"})
        again = await clerk.post(url, json={"amount": 15_000})
    async with shop.client("payments", "clerk", units=[fee_unit()]) as stranger:
        hidden = await stranger.post(url, json={"amount": 15_000})
    assert forbidden.status_code == 403
    assert wrong.status_code == 422 and "15000 VND due" in wrong.json()["detail"]
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["channel"] == "counter"
    assert repeated.status_code == 200 and repeated.json()["receipt_number"] == paid.json()["receipt_number"]
    assert again.status_code == 409 and hidden.status_code == 404
    [event] = await settled_events(shop, "vn.motcua.payment.confirmed.v1", requested["id"])
    assert event["channel"] == "counter" and event["provider"] == "counter"


async def test_receipt_numbers_run_per_unit_and_year_without_gaps_or_duplicates(shop: Stack) -> None:
    unit = fee_unit()
    codes = [(await receive(shop, unit, applicant_name=f"Người nộp {i}", applicant=None))["code"] for i in range(12)]
    ids = [(await payments_of(shop, code))[0]["id"] for code in codes]
    async with shop.client("payments", "clerk", units=[unit]) as clerk:
        cash = await asyncio.gather(*(clerk.post(f"/api/v1/payments/{pid}/cash", json={"amount": 15_000}) for pid in ids[:8]))
        online = await asyncio.gather(*(callback(shop, transfer(pid, 15_000)) for pid in ids[8:]))
    assert all(r.status_code == 200 for r in [*cash, *online]), [r.text for r in [*cash, *online] if r.status_code != 200]
    numbers = sorted([(await payment(shop, pid))["receipt_number"] for pid in ids])
    yy = datetime.now(VN).year % 100
    assert numbers == [f"BL{yy}-{n:07d}" for n in range(1, 13)]


async def test_the_receipt_prints_with_diacritics_the_lines_and_the_amount_in_words(shop: Stack) -> None:
    code = (await receive(shop, SPECIAL_UNIT))["code"]
    [requested] = await payments_of(shop, code)
    async with shop.client("payments", "clerk", units=[SPECIAL_UNIT]) as clerk:
        early = await clerk.get(f"/api/v1/payments/{requested['id']}/receipt.pdf")
        await clerk.post(f"/api/v1/payments/{requested['id']}/cash", json={"amount": 15_000})
        pdf = await clerk.get(f"/api/v1/payments/{requested['id']}/receipt.pdf")
        qr_after = await clerk.get(f"/api/v1/payments/{requested['id']}/qr.png")
    assert early.status_code == 409 and qr_after.status_code == 409
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    receipt_number = (await payment(shop, requested["id"]))["receipt_number"]
    assert "BIÊN LAI THU PHÍ, LỆ PHÍ" in text and f"Số biên lai: {receipt_number}" in text
    assert "UBND PHƯỜNG PHÚ HỘI" in text and "Nguyễn Thị Hồng Nhung" in text and code in text
    assert "Lệ phí đăng ký tạm trú" in text and "Tổng số tiền: 15.000 đồng" in text
    assert "Số tiền bằng chữ: Mười lăm nghìn đồng" in text and "Tiền mặt tại Bộ phận Một cửa" in text


async def test_a_leader_refunds_a_paid_fee_with_a_reason(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    url = f"/api/v1/payments/{requested['id']}/refund"
    async with shop.client("payments", "leader", units=[unit]) as leader, shop.client("payments", "clerk", units=[unit]) as clerk:
        too_early = await leader.post(url, json={"reason": "Thu nhầm lệ phí"})
        await clerk.post(f"/api/v1/payments/{requested['id']}/cash", json={"amount": 15_000})
        by_clerk = await clerk.post(url, json={"reason": "Thu nhầm lệ phí"})
        no_reason = await leader.post(url, json={})
        refunded = await leader.post(url, json={"reason": "Thu nhầm lệ phí"})
        twice = await leader.post(url, json={"reason": "Thu nhầm lệ phí"})
        receipt = await clerk.get(f"/api/v1/payments/{requested['id']}/receipt.pdf")
    assert too_early.status_code == 409 and by_clerk.status_code == 403
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded" and refunded.json()["refund_reason"] == "Thu nhầm lệ phí"
    assert twice.status_code == 409
    [event] = await settled_events(shop, "vn.motcua.payment.refunded.v1", requested["id"])
    assert event["reason"] == "Thu nhầm lệ phí" and int(event["amount"]) == 15_000
    # As a reader sees it: the extracted text in composed form, wherever the line happened to wrap.
    text = unicodedata.normalize("NFC", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(receipt.content)).pages))
    assert "Đã hoàn trả" in " ".join(text.split())


async def test_a_failed_platform_payment_fails_the_request_and_a_clerk_reissues_it(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    failed = await callback(
        shop, {"transaction_id": f"PG-{time.time_ns()}", "status": "failed", "amount": 0, "payment_id": requested["id"],
               "message": "Thẻ bị từ chối"}, provider="paygov", secret=PAYGOV_SECRET,
    )  # fmt: skip
    assert failed.status_code == 200 and failed.json()["payment_status"] == "failed"
    async with shop.client("payments", "clerk", units=[unit]) as clerk:
        reissued = await clerk.post(f"/api/v1/payments/{requested['id']}/reissue")
        again = await clerk.post(f"/api/v1/payments/{requested['id']}/reissue")
        not_closed = await clerk.post(f"/api/v1/payments/{reissued.json()['id']}/reissue")
    assert reissued.status_code == 201, reissued.text
    fresh = reissued.json()
    assert fresh["status"] == "pending" and fresh["replaces_payment_id"] == requested["id"] and fresh["amount"] == 15_000
    assert fresh["id"] != requested["id"] and domain.decode(fresh["qr_payload"])["reference_label"] == fresh["id"]
    assert again.status_code == 200 and again.json()["id"] == fresh["id"]
    assert not_closed.status_code == 409
    [event] = await settled_events(shop, "vn.motcua.payment.failed.v1", requested["id"])
    assert event["status"] == "failed" and "Thẻ bị từ chối" in event["reason"]
    [replacement] = await settled_events(shop, "vn.motcua.payment.requested.v1", fresh["id"])
    assert replacement["replaces_payment_id"] == requested["id"] and replacement["basis"] == f"reissue:{requested['id']}"


async def test_a_withdrawn_dossier_owes_nothing_more(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    async with shop.client("intake", "clerk", units=[unit]) as clerk:
        assert (await clerk.post(f"/api/v1/dossiers/{code}/withdrawal", json={"reason": "Không còn nhu cầu"})).status_code == 200
    [closed] = await payments_of(shop, code, status="failed")
    assert closed["id"] == requested["id"] and closed["failure_reason"] == "dossier withdrawn"


async def test_officials_see_only_their_units_payments(shop: Stack) -> None:
    unit = fee_unit()
    code = (await receive(shop, unit))["code"]
    [requested] = await payments_of(shop, code)
    async with shop.client("payments", "clerk", units=[fee_unit()]) as stranger, shop.client("payments", "clerk", units=[unit]) as clerk:
        assert (await stranger.get(f"/api/v1/payments/{requested['id']}")).status_code == 404
        assert (await stranger.get("/api/v1/payments", params={"dossier_code": code})).json()["count"] == 0
        mine = (await clerk.get("/api/v1/payments")).json()
    assert [p["id"] for p in mine["data"]] == [requested["id"]]
    async with httpx.AsyncClient(base_url=shop.url("payments")) as anonymous:
        assert (await anonymous.get(f"/api/v1/payments/{requested['id']}")).status_code == 401


# ---- reconciliation ------------------------------------------------------------------------------


async def test_a_bank_statement_confirms_matched_lines_once_and_the_day_reconciles(shop: Stack) -> None:
    unit = fee_unit()
    codes = [(await receive(shop, unit))["code"] for _ in range(4)]
    p1, p2, p3, p4 = [(await payments_of(shop, code))[0]["id"] for code in codes]
    stamp = time.time_ns()
    t1, t2, t3, t4, t5 = (f"BIDV{stamp}-{i}" for i in range(1, 6))
    for pid, txn in ((p1, t1), (p4, t4)):
        response = await callback(shop, transfer(pid, 15_000, txn=txn), provider="bidv", secret=BIDV_SECRET)
        assert response.json()["outcome"] == "confirmed"
    today = datetime.now(VN).date()
    csv_text = (
        "date,amount,reference,transaction_id\n"
        f"{today},15000,{p1} DANG KY TAM TRU,{t1}\n"
        f"{today:%d/%m/%Y},\"15,000\",CT DEN:{p2[:5]} {p2[5:]} LE PHI,{t2}\n"
        f"{today},9000,ung ho quy khuyen hoc,{t3}\n"
        f"{today},10000,{p3} LE PHI,{t5}\n"
    )
    async with shop.client("payments", "leader", units=[unit]) as leader:
        first = await leader.post("/api/v1/bank-statements/bidv", content=csv_text.encode(), headers={"Content-Type": "text/csv"})
        second = await leader.post("/api/v1/bank-statements/bidv", content=csv_text.encode(), headers={"Content-Type": "text/csv"})
        broken = await leader.post("/api/v1/bank-statements/bidv", content=b"date,amount\n2025-01-01,1\n", headers={"Content-Type": "text/csv"})
        report = (await leader.get(f"/api/v1/reconciliation/bidv/{today}")).json()
    assert first.status_code == 201, first.text
    outcomes = {line["transaction_id"]: line["outcome"] for line in first.json()["lines"]}
    assert outcomes == {t1: "already_recorded", t2: "confirmed", t3: "unmatched", t5: "amount_mismatch"}
    assert second.status_code == 201 and second.json()["lines_new"] == 0
    assert {line["outcome"] for line in second.json()["lines"]} == {"already_imported"}
    assert broken.status_code == 422 and "transaction_id" in broken.json()["detail"]
    assert (await payment(shop, p2))["status"] == "paid" and (await payment(shop, p3))["status"] == "pending"
    assert len(await settled_events(shop, "vn.motcua.payment.confirmed.v1", p2)) == 1
    assert {line["transaction_id"] for line in report["matched"]} == {t1, t2}
    assert [line["transaction_id"] for line in report["missing_in_service"]] == [t3]
    assert [line["transaction_id"] for line in report["disagreeing"]] == [t5]
    assert report["disagreeing"][0]["payment_amount"] == 15_000
    assert [(m["transaction_id"], m["payment_id"]) for m in report["missing_in_statement"]] == [(t4, p4)]
