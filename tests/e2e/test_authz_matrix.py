"""Who may call what: every operation of every service's OpenAPI × every role × own unit / another unit.

The operations come from each running app's ``/openapi.json``, so a new endpoint without a line in
``ACCESS`` fails the first test. For each operation the table says who may call it:

* ``PUBLIC``: anyone, without a token (it must not answer 401/403);
* ``SIGNED``: a machine callback checked by HMAC, not by a bearer token (refused without the signature,
  whatever token comes with it; forged, stale and replayed signatures: tests/e2e/test_intake.py and
  tests/e2e/test_payments.py);
* a set of roles: without a token 401, with another role 403, both as problems; with an allowed role
  and a token for the resource's unit it is not refused (401/403), and for an operation marked
  ``scoped`` a token for another unit gets 403 or 404 (a resource outside your units does not exist
  for you).

The resources are real: one fee-bearing dossier of a unit of its own, received at the counter, with
its case, payment request, timeline, a scanned document, an intake record and a piece of feedback.
Requests carry an empty JSON body where one is expected, so an allowed caller mostly meets validation
(422) and nothing of note changes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from fpdf import FPDF

from shared.auth import Role, generate_keypair, issue_token
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SERVICES = ("intake", "workflow", "digitization", "payments", "reporting")
ROLES = tuple(Role)
PUBLIC = "public"
SIGNED = "signed"
PROBLEM_JSON = "application/problem+json"

C, S, L, A, AU = Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR
PORTAL, BANK, SERVICE = Role.PORTAL, Role.BANK, Role.SERVICE
OFFICIALS = frozenset({C, S, L, A, AU})
HANDLERS = frozenset({S, L})
ASSIGNERS = frozenset({C, S, L})


@dataclass(frozen=True)
class Rule:
    """Who may call an operation, and whether a token for another unit is refused."""

    who: frozenset[Role] | str
    scoped: bool = False


def roles(*allowed: Role, scoped: bool = True) -> Rule:
    """Only these roles (scoped to the resource's unit unless told otherwise)."""
    return Rule(frozenset(allowed), scoped)


OPEN = Rule(PUBLIC)
CALLBACK = Rule(SIGNED)

PLATFORM: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/api/v1/dead-letters"): roles(A, AU, scoped=False),
    ("GET", "/api/v1/admin/clock"): OPEN,  # reading the time; only moving it needs a token
    ("PUT", "/api/v1/admin/clock"): roles(A, scoped=False),
    ("GET", "/api/v1/admin/drift"): roles(A, AU, scoped=False),
    ("POST", "/api/v1/admin/drift/announce"): roles(A, scoped=False),
    ("POST", "/api/v1/admin/outbox/replay"): roles(A, scoped=False),
}

ACCESS: dict[str, dict[tuple[str, str], Rule]] = {
    "intake": {
        **PLATFORM,
        ("GET", "/api/v1/procedures"): OPEN,
        ("GET", "/api/v1/procedures/{code}"): OPEN,
        ("GET", "/api/v1/procedures/{code}/versions"): OPEN,
        ("POST", "/api/v1/procedures/{code}/versions"): roles(A, scoped=False),
        ("GET", "/api/v1/procedures/{code}/appointment"): OPEN,
        ("GET", "/api/v1/catalog/export"): OPEN,
        ("POST", "/api/v1/catalog/import"): roles(A, scoped=False),
        ("POST", "/api/v1/catalog/national-imports"): roles(A, scoped=False),
        ("GET", "/api/v1/catalog/national-imports/{import_id}"): roles(A, scoped=False),
        ("POST", "/api/v1/catalog/national-imports/{import_id}/apply"): roles(A, scoped=False),
        ("GET", "/api/v1/calendar/{province}"): OPEN,
        ("PUT", "/api/v1/calendar/{province}/days/{day}"): roles(A),
        ("DELETE", "/api/v1/calendar/{province}/days/{day}"): roles(A),
        ("GET", "/api/v1/rulesets"): OPEN,
        ("POST", "/api/v1/rulesets"): roles(A, scoped=False),
        ("GET", "/api/v1/rulesets/in-force"): OPEN,
        ("GET", "/api/v1/rulesets/{ref}"): OPEN,
        ("GET", "/api/v1/units"): OPEN,
        ("POST", "/api/v1/units"): roles(A),  # scoped by the units in the body (BODIES)
        ("POST", "/api/v1/units/{code}/merge"): roles(A, scoped=False),
        ("POST", "/api/v1/dossiers"): roles(C, scoped=False),
        ("POST", "/api/v1/portal/dossiers"): CALLBACK,
        ("POST", "/api/v1/intake-records"): roles(C, scoped=False),
        ("GET", "/api/v1/intake-records/{reference}"): roles(*OFFICIALS),
        ("GET", "/api/v1/dossiers/{code}"): roles(*OFFICIALS),
        ("POST", "/api/v1/dossiers/{code}/supplements"): roles(C),
        ("POST", "/api/v1/dossiers/{code}/withdrawal"): roles(C),
        ("GET", "/api/v1/dossiers/{code}/portal-pushes"): roles(*OFFICIALS),
        ("GET", "/api/v1/public/dossiers/{code}"): OPEN,
        ("GET", "/api/v1/dossiers/{code}/receipt.pdf"): roles(*OFFICIALS),
        ("GET", "/api/v1/intake-records/{reference}/form.pdf"): roles(*OFFICIALS),
        # the unit is a query parameter (default the token's one unit): another unit's token imports into its own
        ("POST", "/api/v1/registers/imports"): roles(C, L, A, scoped=False),
        ("GET", "/api/v1/registers/template.{kind}"): OPEN,
    },
    "workflow": {
        **PLATFORM,
        ("GET", "/api/v1/cases"): roles(*OFFICIALS, scoped=False),
        ("GET", "/api/v1/cases/{code}"): roles(*OFFICIALS),
        ("GET", "/api/v1/cases/{code}/steps"): roles(*OFFICIALS),
        ("GET", "/api/v1/cases/{code}/notifications"): roles(*OFFICIALS),
        ("GET", "/api/v1/notification-templates"): roles(*OFFICIALS, scoped=False),
        ("PUT", "/api/v1/notification-templates/{kind}/{channel}"): roles(A, scoped=False),
        ("POST", "/api/v1/cases/{code}/assign"): roles(*ASSIGNERS),
        ("POST", "/api/v1/cases/{code}/supplement-request"): roles(*HANDLERS),
        ("POST", "/api/v1/cases/{code}/transfer"): roles(*HANDLERS),
        ("POST", "/api/v1/cases/{code}/transfer-return"): roles(*ASSIGNERS),
        ("POST", "/api/v1/cases/{code}/approve"): roles(L),
        ("POST", "/api/v1/cases/{code}/reject"): roles(L),
        ("POST", "/api/v1/cases/{code}/stop"): roles(L),
        ("POST", "/api/v1/cases/{code}/apology"): roles(*HANDLERS),
        ("POST", "/api/v1/cases/{code}/explanation"): roles(*HANDLERS),
        ("POST", "/api/v1/cases/{code}/return"): roles(C),
        ("POST", "/api/v1/cases/{code}/on-the-spot"): roles(C, L),
        ("GET", "/api/v1/cases/{code}/public-links"): roles(*OFFICIALS),
        ("POST", "/api/v1/cases/{code}/feedback"): roles(*ASSIGNERS),
        ("GET", "/api/v1/feedback"): roles(*OFFICIALS, scoped=False),
        ("POST", "/api/v1/feedback/{feedback_id}/answer"): roles(*HANDLERS),
        ("GET", "/api/v1/cases/{code}/forms/02"): roles(*OFFICIALS),
        ("GET", "/api/v1/cases/{code}/forms/04"): roles(*OFFICIALS),
        ("GET", "/api/v1/cases/{code}/forms/05"): roles(*OFFICIALS),
        ("GET", "/api/v1/cases/{code}/forms/stop-notice"): roles(*OFFICIALS),
        # The applicant's links: no token, but the HMAC of the dossier code in ?sig= (a wrong one is a 403).
        ("GET", "/api/v1/public/cases/{code}"): OPEN,
        ("POST", "/api/v1/public/cases/{code}/rating"): OPEN,
        ("POST", "/api/v1/public/cases/{code}/feedback"): OPEN,
    },
    "digitization": {
        **PLATFORM,
        ("POST", "/api/v1/documents"): roles(C, S, L, scoped=False),  # the unit is in the multipart body
        ("GET", "/api/v1/documents/{document_id}"): roles(C, S, L, A, AU),
        ("GET", "/api/v1/documents/{document_id}/content"): roles(C, S, L, A, AU),
        ("GET", "/api/v1/dossiers/{code}/documents"): roles(C, S, L, A, AU),
        ("POST", "/api/v1/documents/{document_id}/sign"): roles(L),
        ("GET", "/api/v1/documents/{document_id}/signature"): roles(C, S, L, A, AU),
        ("GET", "/api/v1/public/documents/{document_id}/signature"): OPEN,
        # Verifying a PDF the caller presents reads nothing stored: any valid token.
        ("POST", "/api/v1/signatures/verify"): roles(*Role, scoped=False),
        ("POST", "/api/v1/dossiers/{code}/owners"): roles(C, S, L),
        ("POST", "/api/v1/citizen-documents/search"): roles(C, S, L, scoped=False),
        ("POST", "/api/v1/dossiers/{code}/reuses"): roles(C, S),
        ("POST", "/api/v1/dossiers/{code}/intake-digitization"): roles(C, S),
        ("GET", "/api/v1/document-accesses"): roles(A, AU, scoped=False),
        ("POST", "/api/v1/document-accesses/search"): roles(A, AU, scoped=False),
        ("POST", "/api/v1/certified-copies"): roles(C, S, L, scoped=False),
        # The world's document is a scan, not a copy: a leader of its unit meets 409, nothing is revoked.
        ("POST", "/api/v1/certified-copies/{document_id}/revocation"): roles(L),
        ("POST", "/api/v1/backfile/batches"): roles(C, L, A, scoped=False),  # the unit is in the multipart body
        ("GET", "/api/v1/backfile/batches/{batch_id}"): roles(C, S, L, A, AU),
        ("PUT", "/api/v1/backfile/results-in-force/{unit}/{field}"): roles(A),
        ("GET", "/api/v1/backfile/progress"): roles(C, S, L, A, AU),
    },
    "payments": {
        **PLATFORM,
        ("POST", "/api/v1/payments/callbacks/{provider}"): CALLBACK,
        ("GET", "/api/v1/payments"): roles(*OFFICIALS, PORTAL, SERVICE, scoped=False),
        ("GET", "/api/v1/payments/{payment_id}"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("GET", "/api/v1/payments/{payment_id}/qr.png"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("GET", "/api/v1/payments/{payment_id}/qr.svg"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("GET", "/api/v1/payments/{payment_id}/receipt.pdf"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("GET", "/api/v1/payments/{payment_id}/audit"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("POST", "/api/v1/payments/{payment_id}/cash"): roles(C),
        ("POST", "/api/v1/payments/{payment_id}/refund"): roles(L),
        ("POST", "/api/v1/payments/{payment_id}/reissue"): roles(C, L),
        ("GET", "/api/v1/fee-assessments/{dossier_code}"): roles(*OFFICIALS, PORTAL, SERVICE),
        ("GET", "/api/v1/payment-transfers/held"): roles(C, L, A, AU, scoped=False),
        ("POST", "/api/v1/payment-transfers/{transfer_id}/match"): roles(C, L, scoped=False),
        ("POST", "/api/v1/payment-transfers/{transfer_id}/dismiss"): roles(L, scoped=False),
        ("POST", "/api/v1/bank-statements/{provider}"): roles(C, L, A, scoped=False),
        ("GET", "/api/v1/reconciliation/{provider}/{day}"): roles(C, L, A, AU, scoped=False),
    },
    "reporting": {
        **PLATFORM,
        **{
            ("GET", f"/api/v1/reports/{report}{suffix}"): roles(*OFFICIALS)
            for report in ("summary", "breakdown", "late", "index-766")
            for suffix in ("", "/export")
        },
        ("GET", "/api/v1/reports/register.pdf"): roles(*OFFICIALS),
        ("GET", "/api/v1/reports/register.xlsx"): roles(*OFFICIALS),
        ("GET", "/api/v1/dossiers/{code}/timeline"): roles(*OFFICIALS),
        ("GET", "/api/v1/dossiers/{code}/timeline/verify"): roles(*OFFICIALS),
        ("GET", "/api/v1/dossiers/{code}/dvcqg-syncs"): roles(*OFFICIALS),
        ("GET", "/api/v1/dvcqg-syncs"): roles(A, AU),
        ("POST", "/api/v1/dvcqg-syncs/{sync_id}/replay"): roles(A),
    },
}


# ---- the resources ------------------------------------------------------------------------------


@dataclass
class World:
    """One unit's real resources, and another unit."""

    unit: str
    other: str
    values: dict[str, str] = field(default_factory=dict)


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    pdf.add_page()
    pdf.cell(text=f"To khai {uuid.uuid4().hex}")
    return bytes(pdf.output())


async def build_world(stack: Stack) -> World:
    unit, other = random_unit(), random_unit()
    today = datetime.now(VN).date().isoformat()
    async with stack.client("intake", "clerk", units=[unit]) as clerk:
        dossier = await clerk.post(
            "/api/v1/dossiers",
            json={"procedure_code": "1.004194", "channel": "counter",
                  "applicant": {"kind": "citizen", "name": "Nguyễn Thị Hồng Nhung", "id_number": f"001203{uuid.uuid4().int % 10**6:06d}"}},
        )  # fmt: skip
        assert dossier.status_code == 201, dossier.text
        code = dossier.json()["code"]
        record = await clerk.post(
            "/api/v1/intake-records",
            json={"outcome": "incomplete", "missing": ["Ảnh 4x6"], "procedure_code": "1.004194", "applicant_name": "Trần Văn Đức"},
        )
        assert record.status_code == 201, record.text
    async with stack.client("workflow", "clerk", units=[unit]) as clerk:
        assert await eventually(lambda: _ok(clerk, f"/api/v1/cases/{code}"))
        links = (await clerk.get(f"/api/v1/cases/{code}/public-links")).json()
        feedback = await clerk.post(f"/api/v1/cases/{code}/feedback", json={"channel": "counter", "content": "Hỏi về tiến độ"})
        assert feedback.status_code == 201, feedback.text
    async with stack.client("payments", "clerk", units=[unit]) as clerk:
        payments = await eventually(lambda: _payments(clerk, code))
    async with stack.client("reporting", "auditor", units=[unit]) as auditor:
        assert await eventually(lambda: _ok(auditor, f"/api/v1/dossiers/{code}/timeline"))
        # queued with the receipt, in the same transaction as the timeline's first event
        sync_id = (await auditor.get(f"/api/v1/dossiers/{code}/dvcqg-syncs")).json()["data"][0]["id"]
    async with stack.client("digitization", "clerk", units=[unit]) as clerk:

        async def scanned() -> str | None:
            response = await clerk.post(
                "/api/v1/documents", files={"file": ("to-khai.pdf", pdf_bytes(), "application/pdf")},
                data={"dossier_code": code, "component_name": "Tờ khai"},
            )  # fmt: skip
            return response.json()["id"] if response.status_code in (200, 201) else None

        document_id = await eventually(scanned)
    values = {
        "code": code, "dossier_code": code, "reference": record.json()["reference"], "document_id": document_id,
        "payment_id": payments[0]["id"], "feedback_id": feedback.json()["id"], "transfer_id": "987654", "sync_id": str(sync_id),
        "provider": "vietinbank", "province": unit.rsplit(".", 1)[-1], "day": "2031-01-02",
        "kind": "no-such-kind", "channel": "sms",  # a 422 for the admin: no template of the shared stack is rewritten
        "sig": links["signature"], "unit": unit, "from": today, "to": today, "month": today[:7],
        "received_at": datetime.now(VN).isoformat(),
        "now": "2000-01-01T00:00:00+07:00",  # a clock moved into the past is a 409: the shared clock never moves
        "id_number": f"001203{uuid.uuid4().int % 10**6:06d}",
    }  # fmt: skip
    return World(unit=unit, other=other, values=values)


async def _ok(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


async def _payments(client: httpx.AsyncClient, code: str) -> list[dict] | None:
    response = await client.get("/api/v1/payments", params={"dossier_code": code})
    return response.json()["data"] if response.status_code == 200 and response.json()["data"] else None


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    return await build_world(stack)


@pytest.fixture(scope="module")
async def schemas(stack: Stack) -> dict[str, dict]:
    found = {}
    for service in SERVICES:
        async with httpx.AsyncClient(base_url=stack.url(service), timeout=10) as client:
            found[service] = (await client.get("/openapi.json")).json()
    return found


def operations_of(schema: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


# ---- calling ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    service: str
    method: str
    path: str
    who: str
    status: int
    problem_type: str | None


def example(schema: dict, components: dict, values: dict[str, str], name: str = "", depth: int = 0) -> object:
    """The smallest value the schema accepts, taking the world's value for a known field name.

    A valid body takes the request past validation to the handler, where the role and unit checks of
    some services are made (a 422 would hide them).
    """
    if "$ref" in schema:
        return example(components[schema["$ref"].rsplit("/", 1)[-1]], components, values, name, depth)
    if name in values and schema.get("type", "string") == "string" and "enum" not in schema:
        return values[name]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return example(options[0], components, values, name, depth) if options else None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        props = schema.get("properties", {})
        return {k: example(props[k], components, values, k, depth + 1) for k in schema.get("required", []) if k in props}
    if kind == "array":
        count = schema.get("minItems", 0)
        return [example(schema.get("items", {}), components, values, name, depth + 1) for _ in range(count)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return max(float(schema.get("minimum", 1)), 1.0)
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "date":
        return "2031-01-02"
    if fmt == "date-time":
        return values["received_at"]
    if fmt == "email":
        return "cong.dan@example.vn"
    return "Nội dung thử " + "x" * max(0, int(schema.get("minLength", 0)) - 13)


# Bodies whose unit decides who may send them: the world's unit, so "own" and "other" tokens mean what they say.
BODIES = {
    "/api/v1/units": lambda v: {"units": [{"code": v["unit"], "name": "Xã Thử Nghiệm", "tier": "commune",
                                           "parent": v["unit"].rsplit(".", 1)[-1]}]},  # fmt: skip
}


def _request_parts(path: str, op: dict, values: dict[str, str], components: dict) -> tuple[str, dict, dict]:
    url = path.format(**{k: values.get(k, "x") for k in _placeholders(path)})
    if path in BODIES:
        return url, {}, {"json": BODIES[path](values)}
    query = {p["name"]: values[p["name"]] for p in op.get("parameters", []) if p["in"] == "query" and p["name"] in values
             and (p.get("required") or p["name"] == "sig")}  # fmt: skip
    kwargs: dict = {}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = example(content["application/json"].get("schema", {}), components, values)
    elif content:
        kwargs["json"] = {}  # multipart and CSV operations check the caller before they read the body
    return url, query, kwargs


def _placeholders(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)  # also inside a segment: /registers/template.{kind}


async def call(
    client: httpx.AsyncClient, service: str, method: str, path: str, op: dict, values: dict[str, str], components: dict,
    who: str, token: str | None,
) -> Call:
    url, query, kwargs = _request_parts(path, op, values, components)
    # One documentation address per run: this test stays within the public rate limit of its own bucket.
    headers = {"X-Forwarded-For": "198.51.100.77"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.request(method, url, params=query, headers=headers, **kwargs)
    problem_type = None
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith(PROBLEM_JSON), (service, method, url, who, response.text[:200])
        problem_type = response.json()["type"]
    return Call(service, method, path, who, response.status_code, problem_type)


def judge(rule: Rule, result: Call) -> str | None:
    """Why the answer breaks the table, or None."""
    refused = result.status in (401, 403)
    # An integration the shared stack leaves switched off answers 503 (the portal's webhook, the LGSP).
    switched_off = ("urn:motcua:problem:webhook-disabled", "urn:motcua:problem:lgsp-not-configured")
    if result.status >= 500 and result.problem_type not in switched_off:
        return "server error"
    if rule.who == PUBLIC:
        return "a public operation refused the caller" if refused else None
    if rule.who == SIGNED:
        return None if result.status in (401, 403, 404, 503) else "a callback taken without its signature"
    assert isinstance(rule.who, frozenset)
    if result.who == "anonymous":
        return None if result.status == 401 else "no token, yet not 401"
    role, _, where = result.who.partition("@")
    if Role(role) not in rule.who:
        return None if result.status == 403 else f"role {role} not refused with 403"
    if where == "own":
        return f"role {role} refused in its own unit" if refused else None
    if rule.scoped and result.status not in (403, 404):
        return f"role {role} of another unit not refused (403/404)"
    if not rule.scoped and result.problem_type == "urn:motcua:problem:role-forbidden":
        return f"role {role} refused as a role"
    return None


# ---- the tests -------------------------------------------------------------------------------------


def test_every_operation_of_every_service_is_in_the_table(schemas: dict[str, dict]) -> None:
    for service, schema in schemas.items():
        found = {(method, path) for method, path, _ in operations_of(schema)}
        assert found - ACCESS[service].keys() == set(), f"{service}: operations missing from ACCESS"
        assert ACCESS[service].keys() - found == set(), f"{service}: ACCESS names operations that no longer exist"


def test_the_openapi_says_which_operations_need_a_token(schemas: dict[str, dict]) -> None:
    """Clients generated from the OpenAPI must know where to send the bearer token."""
    for service, schema in schemas.items():
        for method, path, op in operations_of(schema):
            rule = ACCESS[service][(method, path)]
            if isinstance(rule.who, frozenset):
                assert op.get("security"), f"{service} {method} {path} needs a token but its OpenAPI does not say so"


@pytest.mark.timeout(900)
async def test_every_role_of_every_unit_gets_exactly_what_the_table_allows(stack: Stack, world: World, schemas: dict[str, dict]) -> None:
    own = {role: stack.token(role.value, units=[world.unit], subject=f"matrix-{role.value}") for role in ROLES}
    other = {role: stack.token(role.value, units=[world.other], subject=f"matrix-{role.value}") for role in ROLES}

    def callers(rule: Rule) -> list[tuple[str, str | None]]:
        """Anonymous, every role in the resource's unit, and the allowed roles in another unit too
        (a role that is refused is refused whatever its units)."""
        found: list[tuple[str, str | None]] = [("anonymous", None)]
        for role in ROLES:
            found.append((f"{role.value}@own", own[role]))
            if rule.who in (PUBLIC, SIGNED) or role in rule.who:
                found.append((f"{role.value}@other", other[role]))
        return found

    plan = [
        (service, method, path, op, who, token)
        for service, schema in schemas.items()
        for method, path, op in operations_of(schema)
        for who, token in callers(ACCESS[service][(method, path)])
    ]
    gate = asyncio.Semaphore(4)
    clients = {s: httpx.AsyncClient(base_url=stack.url(s), timeout=60) for s in SERVICES}

    async def one(service: str, method: str, path: str, op: dict, who: str, token: str | None) -> Call:
        async with gate:
            components = schemas[service].get("components", {}).get("schemas", {})
            return await call(clients[service], service, method, path, op, world.values, components, who, token)

    try:
        results = await asyncio.gather(*(one(*p) for p in plan))
    finally:
        for client in clients.values():
            await client.aclose()
    breaks = []
    for result in results:
        why = judge(ACCESS[result.service][(result.method, result.path)], result)
        if why:
            breaks.append(f"{result.service} {result.method} {result.path} as {result.who}: {result.status} {result.problem_type} — {why}")
    assert len(results) > 100 * 9
    assert not breaks, f"{len(breaks)} of {len(results)} calls break the table:\n" + "\n".join(sorted(breaks))


# ---- tokens ------------------------------------------------------------------------------------------

# One operation per service that any official may call: the token is all that differs.
GUARDED = {
    "intake": "/api/v1/procedures/1.004194/versions",  # POST, admin: with a good token an empty body is a 422
    "workflow": "/api/v1/cases",
    "digitization": "/api/v1/document-accesses",
    "payments": "/api/v1/payments",
    "reporting": "/api/v1/dead-letters",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict, header: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def bad_tokens(stack: Stack, tmp: Path) -> dict[str, str]:
    """Tokens that must all be refused, each wrong in one way."""
    private = stack.private_key_path.read_text()
    public = stack.public_key_path.read_text()
    kwargs: dict = {"subject": "mallory", "roles": ["admin", "auditor", "specialist"], "units": ["*"]}
    good = issue_token(private, **kwargs)
    other_private, _ = generate_keypair(tmp / "other-key")
    now = int(time.time())
    claims = {"sub": "mallory", "roles": ["admin"], "units": ["*"], "iss": "motcua", "aud": "motcua", "iat": now, "exp": now + 600}
    head, body, sig = good.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged_claims["roles"] = ["admin", "auditor", "leader", "clerk"]
    hs_input = _unsigned(claims, {"alg": "HS256", "typ": "JWT"})
    hs_sig = _b64(hmac.new(public.encode(), hs_input.encode(), hashlib.sha256).digest())
    return {
        "expired": issue_token(private, **kwargs, now=datetime.now(UTC) - timedelta(hours=9)),
        "signed by another key": issue_token(other_private.read_text(), **kwargs),
        "alg none": _unsigned(claims, {"alg": "none", "typ": "JWT"}) + ".",
        "HS256 keyed with the public key": f"{hs_input}.{hs_sig}",
        "claims changed after signing": f"{head}.{_b64(json.dumps(forged_claims).encode())}.{sig}",
        "another audience": issue_token(private, **kwargs, audience="another-system"),
        "another issuer": issue_token(private, **kwargs, issuer="someone-else"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, private, algorithm="EdDSA"),
        "garbage": "not.a.token",
    }


async def test_expired_forged_and_wrongly_signed_tokens_are_refused_by_every_service(stack: Stack, tmp_path: Path) -> None:
    tokens = bad_tokens(stack, tmp_path)
    valid = stack.token("admin", "auditor", "specialist", units=["*"])
    for service, path in GUARDED.items():
        method = "POST" if service == "intake" else "GET"
        async with httpx.AsyncClient(base_url=stack.url(service), timeout=10) as client:
            control = await client.request(method, path, headers={"Authorization": f"Bearer {valid}"}, json={} if method == "POST" else None)
            assert control.status_code not in (401, 403), (service, control.text)  # the test can tell a good token from a bad one
            for what, token in tokens.items():
                response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, json={} if method == "POST" else None)
                assert response.status_code == 401, (service, what, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["type"] in ("urn:motcua:problem:token-invalid", "urn:motcua:problem:token-expired"), (service, what)
            basic = await client.request(method, path, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}, json={} if method == "POST" else None)
            assert basic.status_code == 401, (service, basic.text)
