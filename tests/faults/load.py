"""A counter and a bank that keep working through faults, and the ledger of what they were told.

The load driver receives dossiers at intake without pause and pays some of them
through the bank's signed callback. Faults make requests fail (connection
refused, 503); the driver then does what a client of the real system does: it
sends the same request again, with the same ``Idempotency-Key`` (a dossier) or
the same bank transaction id (a payment), until it gets an answer. So the ledger
knows exactly which dossiers were accepted and which payments confirmed, even
when a process died after its commit and before its answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from motcua.localstack import Stack
from shared.webhooks import signature as webhook_signature

PROCEDURE = "1.004194"  # đăng ký tạm trú: 15,000 VND at the counter
FEE = 15_000
PROVIDER = "vietinbank"
BANK_SECRET = "vietinbank-callback-secret-faults-5b1e"
PAYMENTS_ENV = {
    "PAYMENTS_COLLECTION_ACCOUNT": json.dumps({"bin": "970415", "account": "113366668888"}),
    "PAYMENTS_CALLBACK_SECRETS": json.dumps({PROVIDER: BANK_SECRET}),
}


@asynccontextmanager
async def own_shop(root: Path, env: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    """The five services on a Postgres and a broker of their own under ``root`` (a test may stop, kill or restore them)."""
    postgres = EmbeddedPostgres(root / "pgdata", port=free_port())
    broker = EmbeddedBroker(port=free_port(), log_path=root / "broker.log")
    await asyncio.to_thread(postgres.start)
    await asyncio.to_thread(broker.start)
    stack = Stack.isolated(postgres, broker, root / "stack", env={**PAYMENTS_ENV, **(env or {})})
    try:
        await stack.start()
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(postgres.stop)
RETRY_PAUSE = 0.2
PAYERS = 2  # a bank sends several notices at once


class Refused(AssertionError):
    """The system gave a definite answer that is not the one a valid request deserves."""


@dataclass
class Ledger:
    """What the clients were told: accepted dossiers, confirmed payments, and every answer on the way."""

    unit: str
    accepted: dict[str, dict] = field(default_factory=dict)  # code -> receipt
    paid: dict[str, str] = field(default_factory=dict)  # payment id -> dossier code
    answers: Counter[str] = field(default_factory=Counter)  # "intake 201", "payments ConnectError", ...
    fresh_confirmations: int = 0  # callbacks answered "confirmed" and not "duplicate"

    @property
    def codes(self) -> list[str]:
        """Accepted dossier codes."""
        return list(self.accepted)


class LoadDriver:
    """Receives dossiers continuously (``receivers`` at a time) and pays every ``pay_every``-th one."""

    def __init__(self, stack: Stack, unit: str, *, receivers: int = 2, pace: float = 0.4, pay_every: int = 2,
                 max_dossiers: int = 2000) -> None:  # fmt: skip
        self.stack = stack
        self.ledger = Ledger(unit)
        self.receivers = receivers
        self.pace = pace
        self.pay_every = pay_every
        self.max_dossiers = max_dossiers
        self._stopping = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._to_pay: asyncio.Queue[str | None] = asyncio.Queue()
        self._issued = 0
        self._busy = 0  # requests (or payments) in hand
        self._receiving = 0  # dossiers in hand
        self._tasks: list[asyncio.Task] = []
        self._payers: list[asyncio.Task] = []
        self._clerk = stack.token("clerk", units=[unit], subject="clerk-load")
        self._official = stack.token("specialist", units=["*"], subject="specialist-load")

    # ---- control ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin receiving and paying in the background."""
        self._tasks = [asyncio.create_task(self._receive_loop(), name=f"receiver-{i}") for i in range(self.receivers)]
        self._payers = [asyncio.create_task(self._pay_loop(), name=f"payer-{i}") for i in range(PAYERS)]
        self._tasks += self._payers

    def pause(self) -> None:
        """Stop sending new requests once the ones in hand have their answer (a quiet moment, not a stop)."""
        self._running.clear()

    def resume(self) -> None:
        """Send again."""
        self._running.set()

    @property
    def receiving(self) -> bool:
        """Whether a dossier is being sent to intake right now."""
        return self._receiving > 0

    async def quiet(self) -> None:
        """Until every request in hand has its answer, after ``pause()``."""
        while self._busy:
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 180) -> Ledger:
        """No new dossiers; the ones accepted so far are paid as planned; then the ledger.

        Fails if a request got a definite refusal, or if the payers could not finish within ``timeout``.
        """
        self._stopping.set()
        self._running.set()
        await asyncio.gather(*(t for t in self._tasks if t not in self._payers))
        for _ in self._payers:
            await self._to_pay.put(None)
        await asyncio.wait_for(asyncio.gather(*self._payers), timeout=timeout)
        return self.ledger

    async def cancel(self) -> None:
        """Abandon everything (teardown after a failure)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def accepted_at_least(self, count: int, timeout: float = 120) -> None:
        """Until ``count`` dossiers are accepted in all; fails if a client failed, gave up, or nothing moved."""
        await self._until(lambda: len(self.ledger.accepted) >= count, f"{count} dossiers accepted", timeout)

    async def paid_at_least(self, count: int, timeout: float = 120) -> None:
        """Until ``count`` payments are confirmed in all."""
        await self._until(lambda: len(self.ledger.paid) >= count, f"{count} payments confirmed", timeout)

    async def _until(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            self._raise_failures()
            if self._issued >= self.max_dossiers and not self._busy:
                raise AssertionError(f"the driver sent its {self.max_dossiers} dossiers before {what}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not {what} within {timeout:g}s: {len(self.ledger.accepted)} accepted, "
                                     f"{len(self.ledger.paid)} paid; answers {dict(self.ledger.answers)}")  # fmt: skip
            await asyncio.sleep(0.05)

    # ---- the clients ------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.url("intake"), timeout=15,
                                     headers={"Authorization": f"Bearer {self._clerk}"}) as intake:  # fmt: skip
            while not self._stopping.is_set() and self._issued < self.max_dossiers:
                await self._running.wait()
                if self._stopping.is_set():
                    break
                self._issued += 1
                number = self._issued
                self._busy += 1
                self._receiving += 1
                try:
                    receipt = await self._receive(intake, number)
                finally:
                    self._busy -= 1
                    self._receiving -= 1
                self.ledger.accepted[receipt["code"]] = receipt
                if number % self.pay_every == 0:
                    self._to_pay.put_nowait(receipt["code"])
                await asyncio.sleep(self.pace)

    async def _receive(self, intake: httpx.AsyncClient, number: int) -> dict:
        """One dossier, sent again with the same key until intake answers."""
        key = f"load-{uuid.uuid4()}"
        body = {"procedure_code": PROCEDURE, "applicant_name": f"Người nộp thứ {number} Đặng Thị Ánh", "channel": "counter"}
        while True:
            response = await self._send("intake", intake.post("/api/v1/dossiers", json=body, headers={"Idempotency-Key": key}))
            if _again(response):
                await asyncio.sleep(_pause(response))
                continue
            if response.status_code not in (200, 201):
                raise Refused(f"intake refused dossier {number}: {response.status_code} {response.text}")
            return response.json()

    async def _pay_loop(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.url("payments"), timeout=15) as payments:
            while (code := await self._to_pay.get()) is not None:
                await self._running.wait()
                self._busy += 1
                try:
                    payment_id = await self._requested(payments, code)
                    await self._confirm(payments, payment_id, code)
                finally:
                    self._busy -= 1

    async def _requested(self, payments: httpx.AsyncClient, code: str) -> str:
        """The id of the dossier's payment request, once payments has made it from intake's event."""
        headers = {"Authorization": f"Bearer {self._official}"}
        while True:
            response = await self._send("payments", payments.get("/api/v1/payments", params={"dossier_code": code}, headers=headers))
            if response is not None and response.status_code == 200 and response.json()["data"]:
                [request] = response.json()["data"]
                if request["amount"] != FEE or request["status"] not in ("pending", "paid"):
                    raise Refused(f"{code}: unexpected payment request {request}")
                return request["id"]
            if not _again(response) and response.status_code != 200:
                raise Refused(f"payments refused the lookup of {code}: {response.status_code} {response.text}")
            await asyncio.sleep(_pause(response))

    async def _confirm(self, payments: httpx.AsyncClient, payment_id: str, code: str) -> None:
        """The bank's credit notice, re-signed and sent again (same transaction) until payments answers."""
        notice = {"transaction_id": f"FT-{payment_id}", "amount": FEE, "currency": "VND",
                  "reference": f"{payment_id} DANG KY TAM TRU"}  # fmt: skip
        for delivery in range(10_000):
            raw = json.dumps({**notice, "delivery": delivery}).encode()
            timestamp = str(int(time.time()))
            headers = {"X-Provider-Timestamp": timestamp, "Content-Type": "application/json",
                       "X-Provider-Signature": "sha256=" + webhook_signature(BANK_SECRET, timestamp, raw)}  # fmt: skip
            response = await self._send("payments", payments.post(f"/api/v1/payments/callbacks/{PROVIDER}", content=raw, headers=headers))
            if _again(response):
                await asyncio.sleep(_pause(response))
                continue
            result = response.json()
            if response.status_code != 200 or result["outcome"] != "confirmed" or result["payment_status"] != "paid":
                raise Refused(f"payments did not confirm {payment_id}: {response.status_code} {response.text}")
            self.ledger.paid[payment_id] = code
            self.ledger.fresh_confirmations += not result["duplicate"]
            return
        raise Refused(f"payments never answered for {payment_id}")

    async def _send(self, service: str, request: object) -> httpx.Response | None:
        """The response, or None when the connection failed (the process is down or died mid-request)."""
        try:
            response = await request  # type: ignore[misc]
        except httpx.TransportError as exc:
            self.ledger.answers[f"{service} {type(exc).__name__}"] += 1
            return None
        self.ledger.answers[f"{service} {response.status_code}"] += 1
        return response

    def _raise_failures(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


def _again(response: httpx.Response | None) -> bool:
    """Whether a client sends the request again: no answer, a server failure, or "too many requests"."""
    return response is None or response.status_code >= 500 or response.status_code == 429


def _pause(response: httpx.Response | None) -> float:
    """How long to wait before sending again: what Retry-After asks for on a 429, else a short pause."""
    if response is not None and response.status_code == 429:
        return min(float(response.headers.get("Retry-After", "1")), 5.0)
    return RETRY_PAUSE
