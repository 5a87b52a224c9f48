"""E-identity on every dossier, and the catalog from the national procedure list (issue 15, points 4 and 6).

Intake and reporting run as real processes. A clerk and the portal's signed webhook say how the applicant was
identified; what a party may not vouch for is refused with a 422 and leaves nothing behind; reporting counts the VNeID
share from the events. A stand-in LGSP started by the test (a real HTTP server: the session, the ``dstcode`` header, a
session that expires mid-way, an outage) serves ``LayDanhSachTTHC`` and ``LayThuTuc``; an admin looks at what
importing the national list would change, then applies it, and the province's own procedures and fields stay.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.webhooks import signature as webhook_signature
from tests.support.http_peer import serve
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PORTAL_SECRET = "portal-eid-secret-5b1e"
DSTCODE, USERNAME, PASSWORD = "DVCQG-TEST", "motcua-intake", "lgsp-pass-8c2d"
CITIZEN = {"kind": "citizen", "name": "Phạm Thị Thu Trang", "id_number": "079203001234"}
IN_FORCE = "2031-01-01"  # the versions a national import publishes come into force then: today's receptions keep theirs


# ---- the stand-in LGSP -------------------------------------------------------------------------------------------


def lay_thu_tuc(code: str, name: str, field_name: str, *, amount: Any, unit: str, fee: str | None = None,
                papers: tuple[str, ...] = (), field_code: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A LayThuTuc record as the public implementations read it."""
    time_of = {"THOIGIANGIAIQUYET": amount, "DONVITINH": unit, "MOTA": "",
               "PHILEPHI": [{"MAPHILEPHI": "LP", "SOTIEN": fee, "DONVI": "Đồng", "MOTA": "Lệ phí"}] if fee else []}  # fmt: skip
    field_of = {"TENLINHVUC": field_name, **({"MALINHVUC": field_code} if field_code else {})}
    return {
        "MATTHC": code, "TENTTHC": name, "LINHVUCTHUCHIEN": [field_of], "CACHTHUCTHUCHIEN": [{"KENH": 1, "THOIGIAN": [time_of]}],
        **({"THANHPHANHOSO": [{"TRUONGHOP": "", "GIAYTO": [{"TENGIAYTO": p, "SOBANCHINH": 1} for p in papers]}]} if papers else {}),
    }  # fmt: skip


def national_records() -> dict[str, dict[str, Any] | None]:
    """The national list: None is a record LayThuTuc refuses."""
    return {
        # changed: 2 working days instead of the seeded 3, a fee of 20,000, the field's national code
        "1.004194": lay_thu_tuc("1.004194", "Đăng ký tạm trú", "Cư trú", amount=2, unit="Ngày làm việc", fee="20.000",
                                field_code="G09-CA03"),
        # unchanged: what the record gives is what the catalog has
        "1.001193": lay_thu_tuc("1.001193", "Đăng ký khai sinh", "Hộ tịch", amount=0, unit="Trong ngày"),
        # added
        "1.099001": lay_thu_tuc("1.099001", "Cấp giấy xác nhận thông tin về cư trú", "Cư trú", amount="3", unit="Ngày làm việc",
                                papers=("Tờ khai thay đổi thông tin cư trú",), field_code="G09-CA03"),
        # unusable: a unit of time the mapping does not know
        "1.098002": lay_thu_tuc("1.098002", "Thủ tục tính theo tuần", "Cư trú", amount=2, unit="Tuần"),
        # LayThuTuc refuses it
        "1.097003": None,
    }  # fmt: skip


@dataclass
class NationalLgsp:
    """The province's LGSP in front of DVCQG: ``POST /lgsp/auth`` gives a session for the right login and ``dstcode``;
    ``POST /lgsp/integration`` serves the two catalog services to a valid session. ``expire_after`` invalidates every
    session at that integration call (code -3); ``down`` answers 503."""

    port: int = field(default_factory=free_port)
    records: dict[str, dict[str, Any] | None] = field(default_factory=national_records)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what the stand-in refused, and why
    expire_after: int | None = None
    down: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lgsp"

    async def _auth(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if self.down:
            return JSONResponse({"error": "bảo trì"}, status_code=503)
        if request.headers.get("dstcode") != DSTCODE or body != {"username": USERNAME, "password": PASSWORD}:
            self.refused.append(f"auth: {request.headers.get('dstcode')!r} {body.get('username')!r}")
            return JSONResponse({"error_code": "-1", "error_message": "Sai tài khoản hoặc dstcode"})
        self.logins += 1
        token = uuid.uuid4().hex
        self.sessions.add(token)
        return JSONResponse({"error_code": 0, "session": token})

    async def _integration(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if self.down:
            return JSONResponse({"error": "bảo trì"}, status_code=503)
        self.calls.append(body)
        if request.headers.get("dstcode") != DSTCODE:
            self.refused.append(f"{body.get('service')}: dstcode {request.headers.get('dstcode')!r}")
            return JSONResponse({"error_code": "-1", "error_message": "Sai dstcode"})
        if self.expire_after is not None and len(self.calls) == self.expire_after:
            self.sessions.clear()
        if body.get("session") not in self.sessions:
            return JSONResponse({"error_code": "-3", "error_message": "Phiên làm việc hết hạn"})
        if body.get("service") == "LayDanhSachTTHC":
            return JSONResponse({"error_code": 0, "result": [{"MATTHC": c, "TENTTHC": (r or {}).get("TENTTHC", "")}
                                                             for c, r in self.records.items()]})  # fmt: skip
        if body.get("service") == "LayThuTuc":
            record = self.records.get(body.get("maTTHC", ""))
            if record is None:
                return JSONResponse({"error_code": "-5", "error_message": "Không tìm thấy thủ tục"})
            return JSONResponse({"error_code": "00", "result": [record]})
        return JSONResponse({"error_code": "-9", "error_message": f"Dịch vụ {body.get('service')} không có"})

    def detail_calls(self) -> list[str]:
        return [c["maTTHC"] for c in self.calls if c.get("service") == "LayThuTuc"]

    def running(self) -> Any:
        app = Starlette(routes=[Route("/lgsp/auth", self._auth, methods=["POST"]),
                                Route("/lgsp/integration", self._integration, methods=["POST"])])  # fmt: skip
        return serve(app, self.port)


@pytest.fixture(scope="module")
async def lgsp() -> AsyncIterator[NationalLgsp]:
    peer = NationalLgsp()
    async with peer.running():
        yield peer


@pytest.fixture(scope="module")
async def province(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, lgsp: NationalLgsp, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Intake (the portal's webhook on, the LGSP configured for intake only) and reporting."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("eid")), services=["intake", "reporting"],
        env={"INTAKE_PORTAL_WEBHOOK_SECRET": PORTAL_SECRET, "INTAKE_DVCQG_LGSP_URL": lgsp.url,
             "INTAKE_DVCQG_USERNAME": USERNAME, "INTAKE_DVCQG_PASSWORD": PASSWORD, "INTAKE_DVCQG_DSTCODE": DSTCODE,
             "INTAKE_DVCQG_SESSION_INVALID_CODES": '["-3"]', "INTAKE_NATIONAL_CATALOG_CONCURRENCY": "2"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    return raw, {"X-Portal-Timestamp": timestamp, "X-Portal-Signature": "sha256=" + webhook_signature(PORTAL_SECRET, timestamp, raw),
                 "Content-Type": "application/json"}  # fmt: skip


def online(unit: str, portal_id: str, **fields: Any) -> dict[str, Any]:
    return {"portal_dossier_id": portal_id, "unit": unit, "procedure_code": "1.004194", "applicant": CITIZEN,
            "submitted_at": datetime.now(VN).isoformat(), "return_channel": "online", **fields}  # fmt: skip


# ---- e-identity -----------------------------------------------------------------------------------------------------


async def test_reception_keeps_how_the_applicant_was_identified_and_refuses_what_a_party_cannot_vouch_for(province: Stack) -> None:
    unit = random_unit()
    portal_id = f"DVC-{time.time_ns()}"
    async with province.client("intake", "clerk", units=[unit]) as clerk, httpx.AsyncClient(base_url=province.url("intake")) as portal:
        counter = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN,
                                                               "identification": "chip_card", "population_data_reused": True})  # fmt: skip
        assert counter.status_code == 201, counter.text
        # a clerk cannot vouch for a VNeID login, nor the portal for a card read at a counter
        clerk_vneid = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN,
                                                                  "identification": "vneid_level2"})  # fmt: skip
        raw, headers = signed(online(unit, portal_id, identification="chip_card"))
        portal_chip = await portal.post("/api/v1/portal/dossiers", content=raw, headers=headers)
        unknown = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": CITIZEN, "identification": "fingerprint"})
        raw, headers = signed(online(unit, portal_id, identification="vneid_level2"))
        web = await portal.post("/api/v1/portal/dossiers", content=raw, headers=headers)
        shown = await clerk.get(f"/api/v1/dossiers/{web.json()['code']}")
    for refused, party in ((clerk_vneid, "clerk"), (portal_chip, "portal")):
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:motcua:problem:identification-not-assertable"
        assert refused.json()["asserted_by"] == party and refused.json()["detail"].startswith("identification: ")
    assert unknown.status_code == 422 and "identification" in unknown.text
    assert (counter.json()["identification"], counter.json()["population_data_reused"]) == ("chip_card", True)
    # the refusals left nothing: the portal's id was not taken, and no dossier number was used
    assert web.status_code == 201, web.text
    assert web.json()["code"].endswith("-0002") and counter.json()["code"].endswith("-0001")
    assert (shown.json()["identification"], shown.json()["population_data_reused"]) == ("vneid_level2", False)

    today = datetime.now(VN).date()
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    async with province.client("reporting", "leader", units=[unit]) as leader:

        async def counted() -> dict[str, Any] | None:
            body = (await leader.get("/api/v1/reports/summary", params={"unit": unit, **span})).json()
            return body if body.get("received_total") == 2 else None

        summary = await eventually(counted)
        index = (await leader.get("/api/v1/reports/index-766", params={"unit": unit, "month": today.strftime("%Y-%m")})).json()
    assert {k: summary[k] for k in ("identified_vneid", "identified_chip_card", "online_identified", "population_data_used")} == {
        "identified_vneid": 1, "identified_chip_card": 1, "online_identified": 1, "population_data_used": 2}
    online_identified = summary["rates"]["online_identified"]
    assert (online_identified["numerator"], online_identified["denominator"], online_identified["met"]) == (1, 1, True)
    population = {r["code"]: r for r in index["indicators"]}["CITIZEN_DATA_CONNECTED_DOSSIER"]
    assert (population["numerator"], population["denominator"], population["points"]) == (2, 2, 2)


# ---- the catalog from the national list -----------------------------------------------------------------------------


async def _versions(client: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/procedures/{code}/versions")
    return response.json()["data"] if response.status_code == 200 else []


async def test_an_admin_sees_what_the_national_list_changes_then_applies_it_and_local_additions_stay(
    province: Stack, lgsp: NationalLgsp
) -> None:
    lgsp.calls.clear()
    lgsp.expire_after = 4  # the session expires in the middle of the LayThuTuc calls
    logins = lgsp.logins
    async with province.client("intake", "admin", units=["*"]) as admin, httpx.AsyncClient(base_url=province.url("intake")) as anyone:
        before = {p["code"]: p for p in (await anyone.get("/api/v1/procedures")).json()["data"]}
        looked = await admin.post("/api/v1/catalog/national-imports", json={"unit": "000.00.00.H56", "effective_from": IN_FORCE})
        assert looked.status_code == 201, looked.text
        look = looked.json()
        # a dry run: nothing in the catalog changed
        assert [v["version"] for v in await _versions(anyone, "1.004194")] == [1]
        assert (await anyone.get("/api/v1/procedures/1.099001", params={"at": "2031-01-02"})).status_code == 404
        again = (await admin.get(f"/api/v1/catalog/national-imports/{look['id']}")).json()
        nobody = await anyone.get(f"/api/v1/catalog/national-imports/{look['id']}")
        async with province.client("intake", "clerk", units=["000.00.12.H56"]) as clerk:
            clerk_apply = await clerk.post(f"/api/v1/catalog/national-imports/{look['id']}/apply", json={})
        not_in_it = await admin.post(f"/api/v1/catalog/national-imports/{look['id']}/apply", json={"codes": ["1.001193"]})
        applied = await admin.post(f"/api/v1/catalog/national-imports/{look['id']}/apply", json={})
        twice = await admin.post(f"/api/v1/catalog/national-imports/{look['id']}/apply", json={})
        tam_tru = await _versions(anyone, "1.004194")
        added = await anyone.get("/api/v1/procedures/1.099001", params={"at": "2031-01-02"})
        today_tam_tru = (await anyone.get("/api/v1/procedures/1.004194")).json()
        after = {p["code"]: p for p in (await anyone.get("/api/v1/procedures", params={"at": "2031-01-02"})).json()["data"]}

    # the LGSP saw a session and the dstcode on every call; the expired session was renewed once and nothing was lost
    assert lgsp.refused == [] and lgsp.logins == logins + 2
    assert sorted(set(lgsp.detail_calls())) == sorted(national_records()) and lgsp.calls[0]["madonvi"] == "000.00.00.H56"

    assert look["counts"] == {"added": 1, "changed": 1, "unchanged": 1, "local_only": len(before) - 2, "unusable": 2}
    assert (again["id"], again["counts"], again["changed"], again["applied_at"]) == (look["id"], look["counts"], look["changed"], None)
    assert nobody.status_code == 401 and clerk_apply.status_code == 403
    (new,) = look["added"]
    assert (new["code"], new["document"]["time_limit"]["amount"], new["document"]["online_level"]) == ("1.099001", 3, "in_person")
    (changed,) = look["changed"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert set(fields) == {"time_limit", "fee_lines", "field_code"}
    assert (fields["time_limit"][0]["amount"], fields["time_limit"][1]["amount"]) == (3, 2)
    assert [e["code"] for e in look["unchanged"]] == ["1.001193"]
    assert {e["code"] for e in look["local_only"]} == set(before) - {"1.004194", "1.001193"}
    unusable = {e["code"]: e["reason"] for e in look["unusable"]}
    assert "time_limit" in unusable["1.098002"] and "LayThuTuc refused (-5)" in unusable["1.097003"]

    assert not_in_it.status_code == 422 and not_in_it.json()["type"] == "urn:motcua:problem:not-in-import"
    assert applied.status_code == 200, applied.text
    assert sorted((p["code"], p["version"], p["change"]) for p in applied.json()["applied"]) == [
        ("1.004194", 2, "changed"), ("1.099001", 1, "added")]
    assert applied.json()["applied_by"] and twice.status_code == 409
    # the new version publishes the national fields and keeps the province's own (the 15:00 rule, the online fee,
    # evidence); it is in force from the day the admin chose, so today's receptions keep version 1
    v2 = tam_tru[-1]
    assert (v2["version"], v2["effective_from"], v2["published_by"].startswith("dvcqg:")) == (2, IN_FORCE, True)
    old, new_definition = tam_tru[0]["definition"], v2["definition"]
    assert new_definition["time_limit"] == {**old["time_limit"], "amount": 2}
    assert new_definition["fee_lines"][0]["amount"] == 20000 and new_definition["field_code"] == "G09-CA03"
    for key in ("online_level", "components", "committed_limit", "on_the_spot", "evidence"):
        assert new_definition[key] == old[key], key
    assert today_tam_tru["version"] == 1
    assert added.status_code == 200 and added.json()["name"] == "Cấp giấy xác nhận thông tin về cư trú"
    assert set(after) == set(before) | {"1.099001"}  # nothing was removed


async def test_a_look_is_refused_once_the_catalog_moved_on_and_an_lgsp_outage_stores_nothing(province: Stack, lgsp: NationalLgsp) -> None:
    lgsp.expire_after = None
    lgsp.records["1.001193"] = lay_thu_tuc("1.001193", "Đăng ký khai sinh", "Hộ tịch", amount=1, unit="Ngày làm việc")
    try:
        async with province.client("intake", "admin", units=["*"]) as admin:
            look = (await admin.post("/api/v1/catalog/national-imports", json={"codes": ["1.001193"], "effective_from": IN_FORCE})).json()
    finally:
        lgsp.records["1.001193"] = national_records()["1.001193"]  # as the other test expects it, whatever the order
    assert [e["code"] for e in look["changed"]] == ["1.001193"] and look["counts"]["added"] == look["counts"]["unchanged"] == 0
    async with province.client("intake", "admin", units=["*"]) as admin:
        # someone publishes a version by hand after the look: applying it would overwrite what they did unseen
        current = (await admin.get("/api/v1/procedures/1.001193")).json()["definition"]
        hand_made = {**current, "evidence": "sửa tay", "field_code": "G09-HT01"}
        published = await admin.post("/api/v1/procedures/1.001193/versions",
                                     json={"effective_from": (datetime.now(VN).date() - timedelta(days=1)).isoformat(), "definition": hand_made})  # fmt: skip
        assert published.status_code == 201, published.text
        stale = await admin.post(f"/api/v1/catalog/national-imports/{look['id']}/apply", json={})
        versions = [v["version"] for v in (await admin.get("/api/v1/procedures/1.001193/versions")).json()["data"]]
        lgsp.down = True
        try:
            down = await admin.post("/api/v1/catalog/national-imports", json={})
        finally:
            lgsp.down = False
        missing = await admin.get(f"/api/v1/catalog/national-imports/{look['id'] + 1}")
    assert stale.status_code == 409 and "look at the national list again" in stale.json()["detail"]
    assert versions == [1, 2]  # the hand-made version only
    assert down.status_code == 503 and down.json()["type"] == "urn:motcua:problem:lgsp-unavailable"
    assert missing.status_code == 404  # the look during the outage stored nothing

    # a dossier received under that version tells the other services the field's national code (MaLinhVuc)
    unit = random_unit()
    async with province.client("intake", "clerk", units=[unit]) as clerk:
        received = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.001193", "applicant": CITIZEN})
    assert received.status_code == 201 and received.json()["procedure_version"] == 2, received.text
    async with province.client("reporting", "auditor", units=[unit]) as auditor:

        async def timeline() -> list[dict[str, Any]] | None:
            response = await auditor.get(f"/api/v1/dossiers/{received.json()['code']}/timeline")
            return response.json()["data"] if response.status_code == 200 else None

        (event,) = await eventually(timeline)
    assert (event["data"]["procedure_field"], event["data"]["procedure_field_code"]) == ("Hộ tịch", "G09-HT01")
