"""A stand-in for a province's LGSP in front of the national portal (DVCQG), run by the test in its own event loop.

It holds the national side to what DOMAIN.md §7 says and ``docs/lgsp/`` publishes, and answers as an LGSP would
(``error_code`` "00" or a refusal with a code and a message):

- ``POST /lgsp/auth`` with the ``dstcode`` header and the credentials gives a session; a session expires after
  ``session_uses`` calls (then error_code ``SESSION_EXPIRED``), or at once with ``expire_sessions()``;
- ``POST /lgsp/integration`` with ``dstcode`` and a valid session: ``TraCuuHoSo``, ``DongBoHoSoMC``,
  ``CapNhatTienDoHoSoMC``; each body is checked against its JSON Schema in ``docs/lgsp/`` (the date format
  among the rules), and each dossier's story against the national state machine: looked up before its first push,
  ``isUpdating`` "False" on the first push and "True" after, statuses in an allowed order, progress steps only for a
  dossier the portal has. A broken rule is kept in ``violations`` and refused (error_code ``RULE_BROKEN``);
- ``down = True`` answers 503 to everything; ``refuse`` (dossier codes) and ``refuse_procedures`` (MaTTHC) name pushes
  that are refused (error_code ``REFUSED``) — the portal's own verdict, not a broken rule.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from motcua.devstack import free_port
from tests.support.http_peer import serve

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "lgsp"
SESSION_EXPIRED, RULE_BROKEN, REFUSED = "-2", "99", "-11"

# What may follow a status on the portal (DOMAIN §1.9 and §7.3): the same status again is an update.
ALLOWED: dict[int, set[int]] = {
    1: {1, 2, 3},
    2: {2, 3, 4, 5, 6, 7, 8, 9},
    4: {3, 4, 5, 6, 7, 8, 9},
    5: {3, 4, 5, 7, 8},
    6: {3, 4, 6, 7, 8, 9},
    9: {9, 10},
    3: {3}, 7: {7}, 8: {8}, 10: {10},
}  # fmt: skip


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")))


@dataclass
class Push:
    """One accepted push or step, as the portal took it."""

    service: str
    updating: str | None
    item: dict[str, Any]
    at: float


@dataclass
class StandInLgsp:
    """The LGSP and, behind it, what the national portal holds."""

    username: str = "motcua-h56"
    password: str = "lgsp-secret-7f3a"
    dstcode: str = "DVCQG"
    port: int = field(default_factory=free_port)
    session_uses: int = 1_000_000
    down: bool = False
    refuse: set[str] = field(default_factory=set)  # dossier codes whose pushes are refused
    refuse_procedures: set[str] = field(default_factory=set)  # procedure codes (MaTTHC) the national catalog lacks
    sessions: dict[str, int] = field(default_factory=dict)  # session → calls left
    logins: int = 0
    lookups: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    portal: dict[str, list[Push]] = field(default_factory=lambda: defaultdict(list))  # MaHoSo → accepted pushes and steps
    refusals: list[tuple[str, str, str]] = field(default_factory=list)  # (MaHoSo, service, code)
    violations: list[str] = field(default_factory=list)
    calls: int = 0
    _schemas: dict[str, jsonschema.Draft202012Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("auth.request", "TraCuuHoSo.request", "DongBoHoSoMC.request", "CapNhatTienDoHoSoMC.request",
                     "DongBoHoSoMC.item", "CapNhatTienDoHoSoMC.item"):  # fmt: skip
            self._schemas[name] = _validator(name)

    @property
    def url(self) -> str:
        """The LGSP's base URL (REPORTING_DVCQG_LGSP_URL)."""
        return f"http://127.0.0.1:{self.port}/lgsp"

    def env(self) -> dict[str, str]:
        """Reporting's settings that point at this LGSP."""
        return {
            "REPORTING_DVCQG_LGSP_URL": self.url,
            "REPORTING_DVCQG_AUTH_ENDPOINT": "/auth",
            "REPORTING_DVCQG_INTEGRATION_ENDPOINT": "/integration",
            "REPORTING_DVCQG_USERNAME": self.username,
            "REPORTING_DVCQG_PASSWORD": self.password,
            "REPORTING_DVCQG_DSTCODE": self.dstcode,
            "REPORTING_DVCQG_SESSION_INVALID_CODES": json.dumps([SESSION_EXPIRED]),
        }

    def expire_sessions(self) -> None:
        """Every session given so far expires now."""
        self.sessions.clear()

    def statuses(self, code: str) -> list[int]:
        """The statuses the portal took for a dossier, in order."""
        return [p.item["TrangThaiHoSo"] for p in self.portal.get(code, []) if p.service == "DongBoHoSoMC"]

    def steps(self, code: str) -> list[dict[str, Any]]:
        """The processing steps the portal took for a dossier, in order."""
        return [p.item for p in self.portal.get(code, []) if p.service == "CapNhatTienDoHoSoMC"]

    def latest(self, code: str) -> dict[str, Any] | None:
        """The dossier as the portal shows it now (its last push)."""
        pushes = [p.item for p in self.portal.get(code, []) if p.service == "DongBoHoSoMC"]
        return pushes[-1] if pushes else None

    # ---- HTTP ---------------------------------------------------------------------------------------------------------

    def _answer(self, code: str = "00", message: str = "Thành công", **extra: Any) -> JSONResponse:
        return JSONResponse({"error_code": code, "error_message": message, **extra})

    def _broken(self, rule: str) -> JSONResponse:
        self.violations.append(rule)
        return self._answer(RULE_BROKEN, rule)

    def _schema_errors(self, name: str, body: Any) -> list[str]:
        return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self._schemas[name].iter_errors(body)]

    async def _auth(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "bảo trì"}, status_code=503)
        if request.headers.get("dstcode") != self.dstcode:
            return self._broken(f"auth without dstcode {self.dstcode!r}: {request.headers.get('dstcode')!r}")
        body = await request.json()
        if errors := self._schema_errors("auth.request", body):
            return self._broken("; ".join(errors))
        if (body["username"], body["password"]) != (self.username, self.password):
            return self._answer("401", "Sai tên đăng nhập hoặc mật khẩu")
        self.logins += 1
        token = f"phien-{self.logins}-{time.monotonic_ns()}"
        self.sessions[token] = self.session_uses
        return JSONResponse({"session": token, "error_code": 0})

    async def _integration(self, request: Request) -> JSONResponse:
        self.calls += 1
        if self.down:
            return JSONResponse({"error": "bảo trì"}, status_code=503)
        if request.headers.get("dstcode") != self.dstcode:
            return self._broken(f"integration call without dstcode {self.dstcode!r}")
        body = await request.json()
        session = body.get("session")
        if session not in self.sessions or self.sessions[session] <= 0:
            self.sessions.pop(session, None)
            return self._answer(SESSION_EXPIRED, "Phiên làm việc không hợp lệ hoặc đã hết hạn")
        self.sessions[session] -= 1
        service = body.get("service")
        if service not in ("TraCuuHoSo", "DongBoHoSoMC", "CapNhatTienDoHoSoMC"):
            return self._broken(f"unknown service {service!r}")
        if errors := self._schema_errors(f"{service}.request", body):
            return self._broken("; ".join(errors))
        if service == "TraCuuHoSo":
            code = body["MaHoSo"]
            self.lookups[code] += 1
            found = [{"MaHoSo": code, "TrangThaiHoSo": self.statuses(code)[-1]}] if self.statuses(code) else []
            return self._answer(result=found)
        item_schema = f"{service}.item"
        for item in body["data"]:
            if errors := self._schema_errors(item_schema, item):
                return self._broken("; ".join(errors))
        for item in body["data"]:
            code = item["MaHoSo"]
            if code in self.refuse or item.get("MaTTHC") in self.refuse_procedures:
                self.refusals.append((code, service, REFUSED))
                return self._answer(REFUSED, f"Hồ sơ {code}: mã thủ tục không khớp danh mục")
            if rule := self._story(service, body.get("isUpdating"), item):
                return self._broken(rule)
            self.portal[code].append(Push(service, body.get("isUpdating"), item, time.time()))
        return self._answer()

    def _story(self, service: str, updating: str | None, item: dict[str, Any]) -> str | None:
        """The rule this push breaks in its dossier's story, if any."""
        code = item["MaHoSo"]
        statuses = self.statuses(code)
        if service == "CapNhatTienDoHoSoMC":
            return None if statuses else f"{code}: a processing step for a dossier the portal does not have"
        status = item["TrangThaiHoSo"]
        if not statuses:
            if self.lookups[code] == 0:
                return f"{code}: first push without TraCuuHoSo before it"
            if updating != "False":
                return f"{code}: first push with isUpdating {updating!r}"
            if status not in (1, 2):
                return f"{code}: first status {status} (a dossier starts at 1 or 2)"
            if item["KenhThucHien"] != 2 and status == 1:
                return f"{code}: status 1 for a dossier that did not come online"
            return None
        if updating != "True":
            return f"{code}: a later push with isUpdating {updating!r}"
        if status not in ALLOWED[statuses[-1]]:
            return f"{code}: status {status} after {statuses[-1]} (so far {statuses})"
        return None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StandInLgsp]:
        """Serve until the block ends."""
        app = Starlette(routes=[
            Route("/lgsp/auth", self._auth, methods=["POST"]),
            Route("/lgsp/integration", self._integration, methods=["POST"]),
        ])  # fmt: skip
        async with serve(app, self.port):
            yield self
