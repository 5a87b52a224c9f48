"""Full-lifecycle benchmark: ``make bench-lifecycle`` (``python -m bench.lifecycle``).

One lifecycle is what a dossier goes through over the real HTTP APIs of the five services, in the order
the e2e tests use (``tests/e2e/test_workflow_paths.py``, ``test_digitization.py``, ``test_payments.py``):

1. **receive**: a clerk ``POST``\\ s the dossier to intake (procedure 1.004194, a 15,000 VND fee);
2. **assign**: once workflow has the case, the unit's specialist takes it (``assignee: me``);
3. **approve**: the unit's leader approves the result;
4. **sign**: once digitization knows the dossier, the specialist uploads the result PDF and the leader
   signs it (PAdES, with the development certificate the service makes for itself);
5. **pay**: once payments has requested the fee, the bank's HMAC-signed credit notice arrives at the
   callback (the ``vietinbank`` provider);
6. **return**: once workflow has the signature and the payment (status ``done``), the clerk returns the result.

Waiting for another service's projection is polling with a growing interval (50 ms to 400 ms): the polls
are load too, and their count per lifecycle is reported.

Workflow commands that meet a 409 "another officer changed the case first" (a consumer updated the case
between the read and the write) are retried as the problem says, and the retries are counted.

Phases, each ``--warmup`` unmeasured seconds then a measured window: a **closed loop** of
``--concurrency`` lifecycles at a time, then an **open loop** at ``--rate`` lifecycles/s, lowered to 80 % of
the closed-loop capacity when the machine cannot sustain the asked rate (the report says what was asked and
what was offered). Throughput is given twice: lifecycles *returned* in the window, and the *work rate*
(stages that ended in the window / 10), which still measures capacity when one lifecycle outlasts the
window on a busy machine; CPU per lifecycle is CPU in the window over that work. After each phase: the **event lag** of every event
of sampled lifecycles, reporting's ``recorded_at`` minus the event's ``time`` (stamped in the producer's
transaction just before its commit), per event type; CPU of every process in the window and per lifecycle;
RSS of each service idle and after load. Bounded by ``--max-seconds`` (280 by default).

Reporting syncs every dossier to a stand-in LGSP the driver runs (``tests/support/lgsp.py``: it checks each push
against ``docs/lgsp/`` and the status order, as in the e2e test), with reporting's default sender settings. After
each phase the **DVCQG sync lag** of the sampled lifecycles: for each status push and processing step, the LGSP's
acceptance (``accepted_at``) minus the status change (``changed_at``), from ``GET /api/v1/dossiers/{code}/dvcqg-syncs``,
and the share accepted within ``REPORTING_DVCQG_ON_TIME_SECONDS`` (the 766 sync indicator's window). The stand-in's
CPU is the driver's.

Results go to ``bench/results/lifecycle-<UTC timestamp>.json`` and ``bench/results/lifecycle-latest.json``.
Nothing here asserts anything about timing: this is measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fpdf import FPDF

from bench.common import (
    RESULTS,
    ROOT,
    OwnStack,
    _parse_time,
    _say,
    cpu_percent,
    cpu_snapshot,
    git_info,
    machine_info,
    memory,
    own_stack,
    percentiles,
    write_results,
)
from motcua.registry import SERVICES
from shared.auth import issue_token
from shared.webhooks import signature as webhook_signature
from tests.support.lgsp import StandInLgsp

PROCEDURE = "1.004194"  # Đăng ký tạm trú: a fixed 15,000 VND fee, so every lifecycle pays
BANK = "vietinbank"
BANK_SECRET = "bench-vietinbank-callback-secret-4f1d"
COLLECTION_ACCOUNT = {"bin": "970415", "account": "113366668888"}
STAGES = ("receive", "wait_case", "assign", "approve", "upload", "sign", "wait_payment", "pay", "wait_done", "return")
T = TypeVar("T")


# -- arguments -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=50, help="asked rate of the open-loop phase, lifecycles/s (50)")
    p.add_argument("--concurrency", type=int, default=24, help="lifecycles in flight in the closed loop (24)")
    p.add_argument("--duration", type=float, default=30, help="measured seconds of each phase (30)")
    p.add_argument("--warmup", type=float, default=5, help="unmeasured seconds before each phase (5)")
    p.add_argument("--units", type=int, default=20, help="units the dossiers are spread over (20)")
    p.add_argument("--lag-samples", type=int, default=60, help="lifecycles per phase whose events' lag is read (60)")
    p.add_argument("--max-in-flight", type=int, default=400, help="open loop: lifecycles in flight before dropping (400)")
    p.add_argument("--step-timeout", type=float, default=30, help="longest wait for one projection, seconds (30)")
    p.add_argument("--drain-timeout", type=float, default=20, help="seconds to let in-flight lifecycles finish (20)")
    p.add_argument("--max-seconds", type=float, default=280, help="the whole run is aborted after this (280)")
    p.add_argument("--baseline-duration", type=float, default=15,
                   help="measured seconds of the bare FastAPI + asyncpg endpoint's closed loop, same run (15); 0 skips")
    p.add_argument("--baseline-concurrency", type=int, default=64, help="workers of that closed loop (64)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (bench/results)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, Postgres data)")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.concurrency < 1 or args.units < 1:
        p.error("rate, duration, concurrency and units must be positive")
    return args


# -- one lifecycle -------------------------------------------------------------------------------------------


class StepFailed(Exception):
    """A step answered something other than what the lifecycle needs."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"{stage}: {detail}")
        self.stage = stage


@dataclass
class Officials:
    """The tokens of one unit's clerk, specialist and leader (stable subjects: 'assignee: me' is the specialist)."""

    unit: str
    clerk: dict[str, str]
    specialist: dict[str, str]
    leader: dict[str, str]


def officials(key: str, n: int) -> list[Officials]:
    """The clerk, specialist and leader of ``n`` units, with tokens signed by the stack's key."""
    units: list[Officials] = []
    for i in range(n):
        unit = f"000.00.{i % 100:02d}.L{i // 100:02d}"  # QCVN 102 length, so codes fit a VietQR bill number

        def auth(role: str, subject: str, unit: str = unit) -> dict[str, str]:
            token = issue_token(key, subject=subject, roles=[role], units=[unit], ttl=timedelta(hours=2))
            return {"Authorization": f"Bearer {token}"}

        units.append(Officials(unit, auth("clerk", f"bench-mc-{i}"), auth("specialist", f"bench-cb-{i}"),
                               auth("leader", f"bench-ld-{i}")))
    return units


@dataclass
class Driver:
    """Runs lifecycles against a stack and records what happened."""

    urls: dict[str, str]
    units: list[Officials]
    step_timeout: float
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    polls: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)
    seq: int = 0

    async def __aenter__(self) -> Driver:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=60)
        for service, url in self.urls.items():
            self.clients[service] = httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(30, pool=60))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients.values()), return_exceptions=True)

    async def _until(self, what: str, probe: Callable[[], Awaitable[T | None]]) -> T:
        """Poll until the probe gives a value: 50 ms, then 1.5 times longer up to 400 ms."""
        deadline = time.monotonic() + self.step_timeout
        delay = 0.05
        while True:
            self.polls[what] += 1
            value = await probe()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(what, f"not there after {self.step_timeout:g}s")
            await asyncio.sleep(delay)
            delay = min(0.4, delay * 1.5)

    async def _command(self, stage: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """A workflow command; a 409 'changed first' (a consumer updated the case meanwhile) is retried, as the
        problem says (reload and try again), at most five times, and counted."""
        for attempt in range(6):
            got = await self.clients["workflow"].post(path, json=body, headers=headers)
            if got.status_code != 409 or "changed the case first" not in got.text or attempt == 5:
                break
            self.conflicts[stage] += 1
            await asyncio.sleep(0.05 * (attempt + 1))
        _expect(got, stage, 200)
        return got.json()

    async def lifecycle(self, index: int, record: dict[str, Any]) -> None:
        """One dossier from reception to return; stage durations (ms) into ``record``."""
        who = self.units[index % len(self.units)]
        intake, workflow = self.clients["intake"], self.clients["workflow"]
        digitization, payments = self.clients["digitization"], self.clients["payments"]
        stages: dict[str, float] = {}
        record["stages_ms"] = stages
        ends: list[float] = []  # loop time each stage ended: the work done in a window, counted in stages
        record["stage_ends"] = ends
        loop = asyncio.get_running_loop()
        clock = loop.time()

        def lap(stage: str) -> None:
            nonlocal clock
            now = loop.time()
            stages[stage] = round((now - clock) * 1000, 2)
            ends.append(now)
            clock = now

        self.seq += 1
        body = {"procedure_code": PROCEDURE, "applicant_name": f"Nguyễn Thị Vòng Đời {self.seq}", "channel": "counter"}
        r = await intake.post("/api/v1/dossiers", json=body, headers=who.clerk)
        _expect(r, "receive", 201)
        code = r.json()["code"]
        record["code"] = code
        lap("receive")

        async def case_seen() -> dict | None:
            got = await workflow.get(f"/api/v1/cases/{code}", headers=who.specialist)
            return got.json() if got.status_code == 200 else None

        await self._until("wait_case", case_seen)
        lap("wait_case")
        await self._command("assign", f"/api/v1/cases/{code}/assign", {"assignee": "me"}, who.specialist)
        lap("assign")
        await self._command("approve", f"/api/v1/cases/{code}/approve", {"note": "Đủ điều kiện"}, who.leader)
        lap("approve")

        pdf = result_pdf(code)

        async def uploaded() -> dict | None:
            got = await digitization.post(
                "/api/v1/documents", headers=who.specialist, files={"file": ("ket-qua.pdf", pdf, "application/pdf")},
                data={"dossier_code": code, "stage": "result", "component_name": "Kết quả giải quyết"},
            )
            if got.status_code == 404:  # digitization has not consumed dossier.received yet
                return None
            _expect(got, "upload", 201, 200)
            return got.json()

        document = await self._until("upload", uploaded)
        lap("upload")
        _expect(await digitization.post(f"/api/v1/documents/{document['id']}/sign", headers=who.leader), "sign", 200)
        lap("sign")

        async def requested() -> dict | None:
            got = await payments.get("/api/v1/payments", params={"dossier_code": code}, headers=who.clerk)
            _expect(got, "wait_payment", 200)
            pending = [p for p in got.json()["data"] if p["status"] == "pending"]
            return pending[0] if pending else None

        payment = await self._until("wait_payment", requested)
        lap("wait_payment")
        notice = {"transaction_id": f"FT{uuid.uuid4().hex[:16].upper()}", "amount": payment["amount"], "currency": "VND",
                  "reference": f"{payment['id']} DANG KY TAM TRU"}
        raw = json.dumps(notice).encode()
        stamp = str(int(time.time()))
        headers = {"X-Provider-Timestamp": stamp, "Content-Type": "application/json",
                   "X-Provider-Signature": "sha256=" + webhook_signature(BANK_SECRET, stamp, raw)}
        paid = await payments.post(f"/api/v1/payments/callbacks/{BANK}", content=raw, headers=headers)
        _expect(paid, "pay", 200)
        if paid.json().get("outcome") != "confirmed":
            raise StepFailed("pay", f"outcome {paid.json().get('outcome')!r}")
        lap("pay")

        async def done() -> dict | None:
            got = await workflow.get(f"/api/v1/cases/{code}", headers=who.clerk)
            _expect(got, "wait_done", 200)
            return got.json() if got.json()["status"] == "done" else None

        await self._until("wait_done", done)
        lap("wait_done")
        returned = await self._command("return", f"/api/v1/cases/{code}/return", {"channel": "counter"}, who.clerk)
        if returned["status"] != "returned":
            raise StepFailed("return", f"status {returned['status']!r}")
        lap("return")


def _expect(response: httpx.Response, stage: str, *statuses: int) -> None:
    if response.status_code not in statuses:
        raise StepFailed(stage, f"HTTP {response.status_code}: {response.text[:200]}")


def result_pdf(code: str) -> bytes:
    """A one-page result of this dossier (unique bytes, as a real decision is)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=14)
    pdf.add_page()
    pdf.cell(text=f"Ket qua giai quyet ho so {code}")
    return bytes(pdf.output())


# -- phases --------------------------------------------------------------------------------------------------


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_phase(
    driver: Driver, owned: OwnStack, args: argparse.Namespace, *, mode: str, rate: float | None, start_index: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One phase: lifecycles in a closed or open loop; figures and the lifecycle records."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ms, me = t0 + args.warmup, t0 + args.warmup + args.duration
    records: list[dict[str, Any]] = []
    tasks: set[asyncio.Task[None]] = set()
    dropped = 0
    index = start_index

    async def one(i: int, intended: float) -> None:
        record: dict[str, Any] = {"intended": intended, "measured": ms <= intended < me}
        records.append(record)
        try:
            await driver.lifecycle(i, record)
            record["ok"] = True
        except StepFailed as exc:
            record["ok"], record["failed_at"], record["error"] = False, exc.stage, str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - every failure is a figure (timeouts, resets, ...)
            record["ok"], record["failed_at"], record["error"] = False, "exception", f"{type(exc).__name__}: {exc}"[:300]
        record["done"] = loop.time()

    def launch(intended: float) -> None:
        nonlocal index
        task = asyncio.create_task(one(index, intended))
        index += 1
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def window() -> tuple[dict[str, Any], dict[str, Any], float, float]:
        await asyncio.sleep(max(0.0, ms - loop.time()))
        first, cpu_first = cpu_snapshot(owned.groups()), _cpu_self()
        await asyncio.sleep(max(0.0, me - loop.time()))
        return first, cpu_snapshot(owned.groups()), cpu_first, _cpu_self()

    watcher = asyncio.create_task(window())
    if mode == "closed":
        while loop.time() < me:
            while len(tasks) < args.concurrency and loop.time() < me:
                launch(loop.time())
            await asyncio.wait(set(tasks), timeout=max(0.0, me - loop.time()), return_when=asyncio.FIRST_COMPLETED)
    else:
        assert rate
        n = 0
        while True:
            intended = t0 + n / rate
            if intended >= me:
                break
            await asyncio.sleep(max(0.0, intended - loop.time()))
            if len(tasks) >= args.max_in_flight:
                dropped += ms <= intended < me
            else:
                launch(intended)
            n += 1
    before, after, gen_before, gen_after = await watcher
    in_flight_at_end = len(tasks)
    if tasks:  # let them finish, so the next phase starts on a quiet system and the lag samples are complete
        _done, pending = await asyncio.wait(set(tasks), timeout=args.drain_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    unfinished = sum(1 for r in records if "done" not in r)
    completed = [r for r in records if r.get("ok") and ms <= r["done"] < me]
    measured = [r for r in records if r["measured"]]
    # Latencies of every lifecycle that started or ended in the window: a closed loop whose lifecycles outlast
    # the window still has figures, and an open loop's slow ones count.
    timed = [r for r in records if r.get("ok") and (r["measured"] or ms <= r["done"] < me)]
    cpu = cpu_percent(before, after)
    cpu["driver"] = round(100 * (gen_after - gen_before) / args.duration, 1)
    # The work done in the window, in lifecycles: every stage that ended in it counts 1/len(STAGES). Lifecycles
    # outlast a short window on a busy machine, so counting whole completions alone would mismeasure CPU per one.
    work = sum(1 for r in records for t in r.get("stage_ends", []) if ms <= t < me) / len(STAGES)
    per = {k: round(v / 100 * args.duration * 1000 / work, 1)
           for k, v in cpu.items() if k not in ("machine", "cpu_stall_pct")} if work >= 1 else {}
    failures = Counter(r["failed_at"] for r in measured if r.get("ok") is False)
    if unfinished:
        failures["unfinished"] = unfinished
    stage_ms = {s: percentiles([r["stages_ms"][s] for r in timed if s in r["stages_ms"]]) for s in STAGES}
    phase = {
        "mode": mode,
        "concurrency": args.concurrency if mode == "closed" else None,
        "offered_rate_per_s": rate,
        "measured_seconds": args.duration,
        "warmup_seconds": args.warmup,
        "started_in_window": len(measured),
        "completed_in_window": len(completed),
        "lifecycles_per_s": round(len(completed) / args.duration, 2),
        "failed_in_window": sum(v for k, v in failures.items() if k != "unfinished"),
        "unfinished_after_drain": unfinished,
        "failures_by_stage": dict(failures),
        "examples_of_errors": sorted({r["error"] for r in measured if r.get("ok") is False})[:5],
        "dropped": dropped,
        "in_flight_at_window_end": in_flight_at_end,
        "completed_incl_warmup_and_drain": sum(1 for r in records if r.get("ok")),
        "lifecycle_ms": percentiles([(r["done"] - r["intended"]) * 1000 for r in timed]),
        "stage_ms": stage_ms,
        "lifecycle_equivalents_in_window": round(work, 1),
        "work_rate_lifecycles_per_s": round(work / args.duration, 2),
        "polls_per_lifecycle": round(sum(driver.polls.values()) / max(1, len(records)), 1),
        "conflict_retries": dict(driver.conflicts),
        "cpu_percent_of_one_core": cpu,
        "cpu_ms_per_lifecycle": per,
        "cpu_ms_per_lifecycle_services_and_infra": round(sum(v for k, v in per.items() if k != "driver"), 1) if per else None,
    }
    driver.polls.clear()
    driver.conflicts.clear()
    return phase, records


async def measure_lag(owned: OwnStack, codes: list[str], timeout: float) -> dict[str, Any]:
    """Per event of each sampled dossier: reporting's recorded_at minus the event's time (its producer's commit).

    Waits (up to ``timeout``) until each dossier's timeline shows ``case.returned``, so every event is there.
    """
    stack = owned.stack
    token = issue_token(stack.private_key_path.read_text(), subject="bench-auditor", roles=["auditor"], units=["*"],
                        ttl=timedelta(hours=2))
    lags: list[float] = []
    by_type: dict[str, list[float]] = {}
    missing = 0
    deadline = time.monotonic() + timeout
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=stack.url("reporting"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=10) as client:

        async def probe(code: str) -> None:
            nonlocal missing
            async with sem:
                while True:
                    entries: list[dict[str, Any]] = []
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.get(f"/api/v1/dossiers/{code}/timeline")
                        entries = r.json().get("data", []) if r.status_code == 200 else []
                    if any(e["type"] == "vn.motcua.case.returned.v1" for e in entries) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.3)
                if not any(e["type"] == "vn.motcua.case.returned.v1" for e in entries):
                    missing += 1
                for e in entries:
                    lag = (_parse_time(e["recorded_at"]) - _parse_time(e["time"])).total_seconds() * 1000
                    lags.append(lag)
                    short = e["type"].removeprefix("vn.motcua.").removesuffix(".v1")
                    by_type.setdefault(short, []).append(lag)

        await asyncio.gather(*(probe(c) for c in codes))
    return {
        "lag_ms": percentiles(lags),
        "by_type": {t: percentiles(v) for t, v in sorted(by_type.items())},
        "dossiers_sampled": len(codes),
        "dossiers_incomplete_within_timeout": missing,
    }


async def measure_sync_lag(owned: OwnStack, lgsp: StandInLgsp, codes: list[str], timeout: float) -> dict[str, Any]:
    """Per sync of each sampled dossier (every one owed by the return): accepted_at minus changed_at, by kind.

    Waits (up to ``timeout``) until each dossier's status syncs reach status 10 accepted.
    """
    stack = owned.stack
    token = issue_token(stack.private_key_path.read_text(), subject="bench-auditor", roles=["auditor"], units=["*"],
                        ttl=timedelta(hours=2))
    lags: dict[str, list[float]] = {"status": [], "progress": []}
    on_time = late = unsynced = 0
    deadline = time.monotonic() + timeout
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=stack.url("reporting"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=10) as client:

        async def probe(code: str) -> None:
            nonlocal on_time, late, unsynced
            async with sem:
                while True:
                    syncs: list[dict[str, Any]] = []
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.get(f"/api/v1/dossiers/{code}/dvcqg-syncs")
                        syncs = r.json().get("data", []) if r.status_code == 200 else []
                    done = any(s["kind"] == "status" and s["status"] == 10 for s in syncs) and all(s["accepted_at"] for s in syncs)
                    if done or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
                for sync in syncs:
                    if not sync["accepted_at"]:
                        unsynced += 1
                        continue
                    lags[sync["kind"]].append((_parse_time(sync["accepted_at"]) - _parse_time(sync["changed_at"])).total_seconds() * 1000)
                    if sync["kind"] == "status":
                        on_time, late = (on_time + 1, late) if sync["on_time"] else (on_time, late + 1)

        await asyncio.gather(*(probe(c) for c in codes))
    return {
        "status_lag_ms": percentiles(lags["status"]),
        "progress_lag_ms": percentiles(lags["progress"]),
        "status_syncs_on_time": on_time,
        "status_syncs_late": late,
        "syncs_unaccepted_within_timeout": unsynced,
        "dossiers_sampled": len(codes),
        "lgsp_rule_violations": len(lgsp.violations),
        "lgsp_logins": lgsp.logins,
    }


def _sample(records: list[dict[str, Any]], n: int) -> list[str]:
    done = [r["code"] for r in records if r.get("ok")]  # warm-up and drain too: a closed loop's may all be there
    random.Random(7).shuffle(done)
    return done[:n]


async def bench(owned: OwnStack, args: argparse.Namespace, report: dict[str, Any], lgsp: StandInLgsp) -> None:
    """The phases, with the stand-in LGSP reporting syncs to serving throughout."""
    async with lgsp.running():
        await _bench(owned, args, report, lgsp)


async def _bench(owned: OwnStack, args: argparse.Namespace, report: dict[str, Any], lgsp: StandInLgsp) -> None:
    """Idle memory; closed loop; open loop at the asked (or a sustainable) rate; memory after load."""
    stack = owned.stack
    units = officials(stack.private_key_path.read_text(), args.units)
    await asyncio.sleep(2)  # let start-up work settle before the idle reading
    report["memory"]["idle"] = memory(owned.groups())
    urls = {s: stack.url(s) for s in SERVICES}
    async with Driver(urls, units, args.step_timeout) as driver:
        _say("one lifecycle to warm every path up")
        first: dict[str, Any] = {}
        try:
            await driver.lifecycle(0, first)
        except StepFailed as exc:
            raise RuntimeError(f"a single lifecycle fails, nothing to measure: {exc}") from None
        report["single_lifecycle_stages_ms"] = first["stages_ms"]
        _say(f"closed loop, {args.concurrency} lifecycles in flight: {args.warmup:g}s warm-up + {args.duration:g}s measured")
        closed, records = await run_phase(driver, owned, args, mode="closed", rate=None, start_index=1)
        report["memory"]["after_load"] = memory(owned.groups())
        _say(f"closed loop: {closed['lifecycles_per_s']} lifecycles/s; reading the event lag")
        sampled = _sample(records, args.lag_samples)
        closed["event_lag"] = await measure_lag(owned, sampled, args.drain_timeout)
        closed["dvcqg_sync"] = await measure_sync_lag(owned, lgsp, sampled, args.drain_timeout)
        report["phases"]["closed"] = closed
        capacity = max(closed["lifecycles_per_s"], closed["work_rate_lifecycles_per_s"])
        offered = args.rate
        if capacity < args.rate:
            offered = max(0.5, round(0.8 * capacity, 1))
            report["notes"].append(f"open loop: asked {args.rate:g}/s but the closed loop sustained {capacity:g}/s, "
                                   f"so {offered:g}/s (80 %) was offered")
        _say(f"open loop at {offered:g} lifecycles/s: {args.warmup:g}s warm-up + {args.duration:g}s measured")
        opened, records = await run_phase(driver, owned, args, mode="open", rate=offered, start_index=len(records) + 1)
        opened["asked_rate_per_s"] = args.rate
        _say(f"open loop: {opened['lifecycles_per_s']} lifecycles/s; reading the event lag")
        sampled = _sample(records, args.lag_samples)
        opened["event_lag"] = await measure_lag(owned, sampled, args.drain_timeout)
        opened["dvcqg_sync"] = await measure_sync_lag(owned, lgsp, sampled, args.drain_timeout)
        report["phases"]["open"] = opened
    if args.baseline_duration > 0:
        await bare_baseline(owned, args, report)


async def bare_baseline(owned: OwnStack, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The bare FastAPI + asyncpg endpoint (:mod:`bench.baseline_app`) on the same Postgres, closed loop, same run.

    So every CPU ratio (lifecycle / bare request) comes from one run on one machine in the same minutes.
    """
    from bench import intake

    target = intake.Target(intake_url="", reporting_url="", private_key_pem="", postgres_dsn=owned.postgres.dsn("postgres"),
                           service_pids=dict(owned.service_pids), postgres_pid=owned.postgres_pid,
                           broker_pid=owned.broker.pid)
    load = argparse.Namespace(generators=1, concurrency=args.baseline_concurrency, rate=1.0, warmup=3.0,
                              duration=args.baseline_duration, request_timeout=10.0, max_in_flight=2000,
                              open_connections=128, max_requests=200_000, lag_samples=1)
    database = f"motcua_bench_{uuid.uuid4().hex[:8]}"
    await intake._asyncpg_admin(target.postgres_dsn, f'CREATE DATABASE "{database}"')
    try:
        await intake.baseline_phases(target, load, report, database, modes=("closed",))
    finally:
        intake._stop_children(target)
        with contextlib.suppress(Exception):
            await intake._asyncpg_admin(target.postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def ratios(report: dict[str, Any]) -> dict[str, str]:
    """CPU per lifecycle over the bare request's, measured in the same run (issue 18's figure)."""
    from bench.intake import bare_request_cpu_ms

    bare = bare_request_cpu_ms(report["phases"].get("baseline_closed"))
    out: dict[str, str] = {}
    if bare is None:
        return out
    out["bare request CPU ms (app + Postgres)"] = f"{bare['app']:.2f} + {bare['postgres']:.2f} = {bare['total']:.2f}"
    for key in ("closed", "open"):
        ph = report["phases"].get(key)
        if ph and ph.get("cpu_ms_per_lifecycle_services_and_infra"):
            lc = ph["cpu_ms_per_lifecycle_services_and_infra"]
            out[f"{key}: CPU per lifecycle / bare request"] = f"{lc:.0f} / {bare['total']:.2f} ms = {lc / bare['total']:.0f}x"
    return out


# -- output --------------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(report: dict[str, Any]) -> str:
    """The readable table."""
    m, p = report["machine"], report["parameters"]
    lines = [
        f"motcua lifecycle benchmark  {report['started_at']}  ({report.get('elapsed_s', 0):.0f}s)",
        f"machine: {m['cpu_count']} CPUs, {m['memory_gib']} GiB, Python {m['python']}; load average at start "
        f"{m['load_average_at_start']}",
        f"code at {report['git']['commit']}"
        f"{' + uncommitted changes in services/ or shared/' if report['git']['services_or_shared_modified'] else ''}",
        f"command: {report['command']}",
        "lifecycle: receive → assign → approve → upload + sign the result → bank callback → return, "
        f"over HTTP; {p['units']} units",
        "",
        f"{'phase':<28}{'done/s':>8}{'work/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}{'lag p50':>9}{'lag p99':>9}"
        f"{'CPU ms/lc':>11}",
    ]
    labels = {"closed": f"closed, {p['concurrency']} in flight", "open": "open, offered {}/s"}
    for key, label in labels.items():
        ph = report["phases"].get(key)
        if not ph:
            continue
        label = label.format(_f(ph["offered_rate_per_s"], 1)) if key == "open" else label
        lag = ph.get("event_lag", {}).get("lag_ms", {})
        lines.append(f"{label:<28}{_f(ph['lifecycles_per_s'], 2):>8}{_f(ph['work_rate_lifecycles_per_s'], 2):>8}"
                     f"{_f(ph['lifecycle_ms']['p50'], 0):>9}"
                     f"{_f(ph['lifecycle_ms']['p99'], 0):>9}{ph['failed_in_window']:>8}{_f(lag.get('p50'), 0):>9}"
                     f"{_f(lag.get('p99'), 0):>9}{_f(ph['cpu_ms_per_lifecycle_services_and_infra'], 0):>11}")
    lines.append("(failed: an unexpected answer, not counting lifecycles still running when --drain-timeout cut them; "
                 "done/s: lifecycles returned in the window; work/s: stages ended in the window / 10, in lifecycles; "
                 "lifecycle ms: from its intended start to the return; lag: reporting's recorded_at minus the event's "
                 "time, every event of sampled lifecycles; CPU ms per lifecycle: services + Postgres + broker per "
                 "lifecycle of work, the driver apart)")
    for key in labels:
        ph = report["phases"].get(key)
        if not ph:
            continue
        lines.append("")
        lines.append(f"{key}: stage p50 / p99 ms: " + ", ".join(
            f"{s} {_f(v['p50'], 0)}/{_f(v['p99'], 0)}" for s, v in ph["stage_ms"].items() if v["n"]))
        lines.append(f"{key}: CPU ms per lifecycle: " + ", ".join(
            f"{k} {v:g}" for k, v in ph["cpu_ms_per_lifecycle"].items() if v >= 0.05)
                     + f"; machine {_f(ph['cpu_percent_of_one_core'].get('machine'), 0)}% of one core, stall "
                     f"{_f(ph['cpu_percent_of_one_core'].get('cpu_stall_pct'), 0)}%; {ph['polls_per_lifecycle']} polls "
                     f"per lifecycle; 409 retries {ph['conflict_retries'] or 'none'}")
        sync = ph.get("dvcqg_sync")
        if sync:
            st, pr = sync["status_lag_ms"], sync["progress_lag_ms"]
            lines.append(f"{key}: DVCQG sync lag ms p50 / p99: status pushes {_f(st.get('p50'), 0)}/{_f(st.get('p99'), 0)}, "
                         f"progress steps {_f(pr.get('p50'), 0)}/{_f(pr.get('p99'), 0)}; status syncs on time "
                         f"{sync['status_syncs_on_time']}, late {sync['status_syncs_late']}, not accepted "
                         f"{sync['syncs_unaccepted_within_timeout']}; LGSP rule violations {sync['lgsp_rule_violations']}")
        by_type = ph.get("event_lag", {}).get("by_type", {})
        if by_type:
            lines.append(f"{key}: lag p99 ms by event: " + ", ".join(f"{t} {_f(v['p99'], 0)}" for t, v in by_type.items()))
        if ph["failures_by_stage"]:
            lines.append(f"{key}: failures by stage {ph['failures_by_stage']} ('unfinished': still running when "
                         f"--drain-timeout cut them); e.g. {ph['examples_of_errors'][:2]}")
    mem = report["memory"]
    lines.append("")
    lines.append("resident memory, MiB (RSS; Postgres as PSS): " + ", ".join(
        f"{n} {_f(mem.get('idle', {}).get(n, {}).get('pss_mib' if n == 'postgres' else 'rss_mib'), 0)}"
        f"→{_f(mem.get('after_load', {}).get(n, {}).get('pss_mib' if n == 'postgres' else 'rss_mib'), 0)}"
        for n in [*SERVICES, "broker", "postgres"]))
    base = report["phases"].get("baseline_closed")
    if base:
        lines.append(f"bare FastAPI + asyncpg endpoint, closed c={base['concurrency']}, same run: "
                     f"{_f(base['accepted_per_s'])} requests/s, CPU ms per request " + ", ".join(
                         f"{k} {v:.2f}" for k, v in base["cpu_ms_per_accepted"].items() if v >= 0.01))
    if report.get("ratios"):
        lines.append("ratios: " + "; ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def notes(report: dict[str, Any]) -> list[str]:
    """Caveats the figures need."""
    out = [f"the driver, the five services, Postgres and the broker share {report['machine']['cpu_count']} CPUs"]
    for key, ph in report["phases"].items():
        cpu = ph["cpu_percent_of_one_core"]
        ours = sum(v for k, v in cpu.items() if k not in ("machine", "cpu_stall_pct"))
        other = cpu.get("machine", 0) - ours
        if other > 15:
            out.append(f"{key}: {other:.0f}% of a core went to processes outside the benchmark (other work on the "
                       "machine disturbs the figures)")
        if ph["mode"] == "open" and "lifecycles_per_s" in ph and ph["lifecycles_per_s"] < 0.9 * ph["offered_rate_per_s"]:
            out.append(f"{key}: offered {ph['offered_rate_per_s']:g}/s, completed {ph['lifecycles_per_s']:g}/s in the "
                       "window: not sustained")
    return out



# -- entry point ---------------------------------------------------------------------------------------------


def stack_env(workdir: Path, lgsp: StandInLgsp) -> dict[str, str]:
    """The services' settings for a lifecycle: the bank, the stand-in LGSP, DVCQG's field codes."""
    return {
        "MOTCUA_HOME": str(workdir / "home"),  # digitization's files and development certificate
        "PAYMENTS_COLLECTION_ACCOUNT": json.dumps(COLLECTION_ACCOUNT),
        "PAYMENTS_CALLBACK_SECRETS": json.dumps({BANK: BANK_SECRET}),
        **lgsp.env(),
        "REPORTING_DVCQG_MAPPING": json.dumps({"field_codes": {"Cư trú": "G09-CA-03"}}, ensure_ascii=False),
    }


def _run(coro: Awaitable[None]) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Start an own stack, run both phases, write and print the results, stop everything."""
    args = parse_args(argv)
    started = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "lifecycle",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench.lifecycle",
                                                        *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_info(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "phases": {},
        "memory": {"idle": {}, "after_load": {}},
        "notes": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="motcua-bench-lc-"))
    lgsp = StandInLgsp()  # served in the driver's loop once the phases start (reporting retries until then)
    env = stack_env(workdir, lgsp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    status = 0
    try:
        _say(f"starting an isolated stack in {workdir}")
        with own_stack(workdir, env=env) as owned:
            report["target"] = (f"own isolated stack: embedded Postgres 127.0.0.1:{owned.postgres.port}, Tansu "
                                f"127.0.0.1:{owned.broker.port}, five services as processes")
            report["stack_start_s"] = round(time.monotonic() - started, 1)
            _say(f"stack ready in {report['stack_start_s']}s")
            remaining = args.max_seconds - (time.monotonic() - started)

            async def bounded() -> None:
                await asyncio.wait_for(bench(owned, args, report, lgsp), timeout=max(10.0, remaining))

            try:
                _run(bounded())
            finally:
                if args.keep:
                    report["logs"] = {n: str(p.log_path) for n, p in owned.stack.services.items()}
                _say("stopping the stack")
    except TimeoutError:
        report["notes"].append(f"aborted: the run exceeded --max-seconds {args.max_seconds:g}")
        _say(report["notes"][-1])
        status = 1
    except Exception as exc:  # noqa: BLE001 - reported with the partial results, after cleaning up
        traceback.print_exc()
        report["notes"].append(f"failed: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    with contextlib.suppress(Exception):
        report["notes"] = [*report["notes"], *notes(report)]
    try:
        report["ratios"] = ratios(report)
    except Exception:  # noqa: BLE001 - the figures are worth more than the ratios
        traceback.print_exc()
    path = write_results(report, args.out, "lifecycle", "lifecycle-latest.json")
    print()
    try:
        print(render(report))
    except Exception:  # noqa: BLE001 - the JSON is written; the table is a convenience
        traceback.print_exc()
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} (and lifecycle-latest.json)")
    return status


if __name__ == "__main__":
    sys.exit(main())
