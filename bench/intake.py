"""Intake throughput benchmark: ``make bench`` (``python -m bench.intake``).

By default it starts its own isolated stack (embedded Postgres in a temp dir and a Tansu broker,
both on free ports, and the five services as processes) so it is one command on a fresh machine;
``--intake-url/--reporting-url/--private-key`` point it at a stack that already runs instead
(``make run`` keeps its key in ``.motcua/jwt/jwt-private.pem``).

What it measures, in one run so every figure reads as a ratio to the baselines next to it:

1. intake ``POST /api/v1/dossiers``, open loop at ``--rate`` for ``--duration`` seconds, then
   closed loop with ``--concurrency`` workers: accepted (201) per second, latency
   p50/p90/p99/max, errors by status;
2. event lag from intake's commit to reporting's projection: for a sample of accepted dossiers,
   ``recorded_at`` of the timeline entry (when reporting applied it) minus the dossier's
   ``received_at`` (from the POST response); and how long reporting takes to project *every*
   accepted dossier after the load stops (summary report per unit);
3. the same load against a bare FastAPI + asyncpg endpoint doing one INSERT in one transaction
   (:mod:`bench.baseline_app`, uvicorn with uvloop and httptools);
4. ``pgbench`` on the same Postgres: an insert-only script and intake's own transaction
   (sequence upsert, dossier insert, outbox insert, NOTIFY) on a fresh copy of intake's schema;
5. CPU of every process during each measured window (the generator included: on a small machine
   it competes with the system under test) and resident memory of each service idle and after load.

Results go to ``bench/results/intake-<UTC timestamp>.json`` and ``bench/results/latest.json``.
Nothing here asserts anything about timing: this is measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import (
    LOCAL_HOSTS,
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
    pid_listening_on,
)
from motcua.devstack import EmbeddedPostgres, free_port
from motcua.registry import PORTS, SERVICES
from shared.auth import issue_token

VN_OFFSET = timedelta(hours=7)
PROCEDURE = "1.004194"


# -- arguments -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500, help="offered rate of the open-loop phase, requests/s (500)")
    p.add_argument("--duration", type=float, default=15, help="measured seconds of each load phase (15)")
    p.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each phase (3)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="workers of the closed-loop phase (8: intake's write slots and as many queued; more are refused "
                        "with 503 at once, and the phase would measure refusals)")
    p.add_argument("--units", type=int, default=50, help="receiving units the dossiers are spread over (50)")
    p.add_argument("--generators", type=int, default=1, help="load generator processes (1)")
    p.add_argument("--lag-samples", type=int, default=200, help="dossiers whose event lag is measured per phase (200)")
    p.add_argument("--drain-timeout", type=float, default=20,
                   help="max seconds to wait for reporting to catch up, per phase (20)")
    p.add_argument("--request-timeout", type=float, default=10, help="per-request timeout, seconds (10)")
    p.add_argument("--max-in-flight", type=int, default=2000, help="open loop: requests in flight before dropping (2000)")
    p.add_argument("--open-connections", type=int, default=128, help="open loop: keep-alive connections (128)")
    p.add_argument("--max-requests", type=int, default=200_000, help="hard cap of requests per phase (200000)")
    p.add_argument("--pgbench-seconds", type=float, default=6, help="seconds of each pgbench run (6); 0 skips pgbench")
    p.add_argument("--pgbench-clients", type=int, default=8, help="pgbench -c (8)")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare FastAPI + asyncpg baseline")
    p.add_argument("--max-seconds", type=float, default=300, help="the whole run is aborted after this (300)")
    p.add_argument("--intake-url", help="target an already running stack: intake base URL (127.0.0.1 only)")
    p.add_argument("--reporting-url", help="...and its reporting base URL")
    p.add_argument("--private-key", type=Path, help="...and the PEM key its tokens are signed with")
    p.add_argument("--postgres-url", help="...and its Postgres (superuser URL) for the baseline and pgbench")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (bench/results)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, Postgres data) of an own stack")
    args = p.parse_args(argv)
    external = [args.intake_url, args.reporting_url, args.private_key]
    if any(external) and not all(external):
        p.error("--intake-url, --reporting-url and --private-key go together")
    for url in (args.intake_url, args.reporting_url, args.postgres_url):
        if url and urlsplit(url).hostname not in LOCAL_HOSTS:
            p.error(f"{url}: only 127.0.0.1 targets")
    if args.postgres_url and not args.intake_url:
        p.error("--postgres-url only with an external stack (an own stack uses its own Postgres)")
    if args.rate <= 0 or args.duration <= 0 or args.concurrency < 1 or args.units < 1 or args.generators < 1:
        p.error("rate, duration, concurrency, units and generators must be positive")
    return args


# -- the bench ----------------------------------------------------------------------------------------------


@dataclass
class Target:
    """What is under test and the processes to watch."""

    intake_url: str
    reporting_url: str
    private_key_pem: str
    postgres_dsn: str | None  # superuser, libpq style
    service_pids: dict[str, int] = field(default_factory=dict)
    postgres_pid: int | None = None
    broker_pid: int | None = None
    description: str = ""
    children: list[subprocess.Popen] = field(default_factory=list)  # baseline app, pgbench: killed on abort
    loadgens: list[asyncio.subprocess.Process] = field(default_factory=list)

    def groups(self, **extra: list[int]) -> dict[str, list[int]]:
        """Process groups to watch: services, Postgres, broker and any extra ones."""
        groups = {name: [pid] for name, pid in self.service_pids.items()}
        if self.postgres_pid:
            groups["postgres"] = [self.postgres_pid]
        if self.broker_pid:
            groups["broker"] = [self.broker_pid]
        groups.update({k: v for k, v in extra.items() if v})
        return groups

    def token(self, *roles: str, units: list[str], subject: str) -> str:
        """A bearer token for this stack."""
        return issue_token(self.private_key_pem, subject=subject, roles=list(roles), units=units, ttl=timedelta(hours=2))


_METRIC_LINE = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+|NaN)$')


async def scrape(urls: dict[str, str]) -> dict[str, float]:
    """Outbox and consumer figures from the services' /metrics (missing ones are left out)."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as client:  # an overloaded service answers late
        for service, url in urls.items():
            try:
                text = (await client.get(f"{url}/metrics")).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                m = _METRIC_LINE.match(line)
                if not m or f'service="{service}"' not in m.group(2):
                    continue
                name, labels, value = m.group(1), m.group(2), float(m.group(3))
                if name == "motcua_events_published_total":
                    out[f"{service}.published"] = out.get(f"{service}.published", 0.0) + value
                elif name in ("motcua_outbox_backlog", "motcua_outbox_oldest_age_seconds"):
                    out[f"{service}.{name.removeprefix('motcua_')}"] = value
                elif name == "motcua_events_consumed_total" and ".dossier.received." in labels:
                    out[f"{service}.consumed_dossier_received"] = out.get(f"{service}.consumed_dossier_received", 0.0) + value
    return out


def _flow(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float | None]:
    """Relay publish rate and reporting's consumption rate in the window, and the outbox at its end."""
    def rate(key: str) -> float | None:
        return round((after[key] - before[key]) / seconds, 1) if key in after and key in before else None

    return {
        "intake_relay_published_per_s": rate("intake.published"),
        "reporting_applied_dossier_received_per_s": rate("reporting.consumed_dossier_received"),
        "intake_outbox_backlog_at_end": after.get("intake.outbox_backlog"),
        "intake_outbox_oldest_unpublished_age_s_at_end": after.get("intake.outbox_oldest_age_seconds"),
    }


async def run_load(
    target: Target,
    args: argparse.Namespace,
    *,
    base_url: str,
    path: str,
    mode: str,
    tokens: list[tuple[str, str]] | None,
    collect: bool,
    watch: dict[str, list[int]],
    metrics: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One load phase through ``--generators`` generator processes; merged figures and CPU per process group."""
    gens = args.generators
    start_at = time.time() + 3.0  # room for the generators to start and open their clients
    specs = []
    for g in range(gens):
        concurrency = max(1, args.concurrency // gens + (1 if g < args.concurrency % gens else 0))
        spec = {
            "base_url": base_url,
            "path": path,
            "mode": mode,
            "rate": args.rate / gens,
            "concurrency": concurrency,
            "warmup": args.warmup,
            "duration": args.duration,
            "timeout": args.request_timeout,
            "max_in_flight": max(1, args.max_in_flight // gens),
            "max_connections": max(1, args.open_connections // gens) if mode == "open" else concurrency,
            "max_requests": max(1, args.max_requests // gens),
            "tokens": [list(t) for t in tokens[g::gens]] if tokens else None,
            "collect": collect,
            "samples": max(1, args.lag_samples // gens),
            "start_at": start_at,
            "name_prefix": f"Nguyễn Văn Bench {g}-",
            "procedure_code": PROCEDURE,
        }
        specs.append(spec)
    procs = []
    try:
        for _ in specs:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.loadgen", cwd=str(ROOT),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            procs.append(proc)
            target.loadgens.append(proc)

        flows: list[dict[str, float]] = []

        async def _cpu_window() -> tuple[dict[str, Any], dict[str, Any]]:
            await asyncio.sleep(max(0.0, start_at + args.warmup - time.time()))
            first = cpu_snapshot(watch)
            if metrics:
                flows.append(await scrape(metrics))
            await asyncio.sleep(max(0.0, start_at + args.warmup + args.duration - time.time()))
            last = cpu_snapshot(watch)
            if metrics:
                flows.append(await scrape(metrics))
            return first, last

        window = asyncio.create_task(_cpu_window())
        limit = args.warmup + args.duration + args.request_timeout + 30
        try:
            outs = await asyncio.wait_for(
                asyncio.gather(*(p.communicate(json.dumps(s).encode()) for p, s in zip(procs, specs, strict=True))), limit
            )
        except TimeoutError:
            raise RuntimeError(f"the load generator did not finish within {limit:.0f}s") from None
        before, after = await window
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            target.loadgens.remove(proc)
    results = []
    for proc, (stdout, stderr) in zip(procs, outs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"load generator exited with {proc.returncode}:\n{stderr.decode(errors='replace')[-3000:]}")
        results.append(json.loads(stdout))
    merged = merge(results, args, mode, cpu_percent(before, after))
    if len(flows) == 2:
        merged["event_flow"] = _flow(flows[0], flows[1], args.duration)
    return merged


def merge(results: list[dict[str, Any]], args: argparse.Namespace, mode: str, cpu: dict[str, float]) -> dict[str, Any]:
    """Figures of several generators as one."""
    def total(key: str) -> int:
        return sum(r[key] for r in results)

    status: dict[str, int] = {}
    exceptions: dict[str, int] = {}
    for r in results:
        for k, v in r["status"].items():
            status[k] = status.get(k, 0) + v
        for k, v in r["exceptions"].items():
            exceptions[k] = exceptions.get(k, 0) + v
    latencies = [x for r in results for x in r["latencies_ms"]]
    service = [x for r in results for x in r["service_ms"]]
    lateness = [x for r in results for x in r["lateness_ms"]]
    errors = {k: v for k, v in status.items() if k != "201"}
    errors.update(exceptions)
    if total("dropped"):
        errors["dropped"] = total("dropped")
    gen_cpu = [r["cpu_seconds_window"] for r in results if r["cpu_seconds_window"] is not None]
    return {
        "mode": mode,
        "offered_rate_per_s": args.rate if mode == "open" else None,
        "concurrency": args.concurrency if mode == "closed" else None,
        "measured_seconds": args.duration,
        "warmup_seconds": args.warmup,
        "generators": len(results),
        "sent_in_window": total("sent_in_window"),
        "accepted_in_window": total("accepted_in_window"),
        "accepted_per_s": round(total("accepted_in_window") / args.duration, 1),
        "accepted_total_incl_warmup": total("accepted_total"),
        "status_counts": status,
        "errors": errors,
        "error_count": sum(errors.values()),
        "latency_ms": percentiles(latencies),
        "latency_ms_by_status": {
            code: percentiles([x for r in results for x in r.get("latencies_by_status_ms", {}).get(code, [])])
            for code in sorted({c for r in results for c in r.get("latencies_by_status_ms", {})})
        },
        "service_time_ms": percentiles(service),
        "generator_lateness_ms": percentiles(lateness) if lateness else None,
        "peak_in_flight": max(r["peak_in_flight"] for r in results),
        "generator_late_start_s": max(r.get("late_start_s", 0.0) for r in results),
        "generator_cpu_percent_of_one_core": round(100 * sum(gen_cpu) / args.duration, 1) if gen_cpu else None,
        "cpu_percent_of_one_core": cpu,
        "cpu_ms_per_accepted": {
            k: round(v / 100 * args.duration * 1000 / total("accepted_in_window"), 2)
            for k, v in cpu.items() if k not in ("machine", "cpu_stall_pct")
        } if total("accepted_in_window") else {},
        "samples": [s for r in results for s in r["samples"]],
    }


async def measure_lag(target: Target, samples: list[list[str]]) -> dict[str, Any]:
    """recorded_at (reporting applied it) - received_at (intake committed it) for sampled dossiers.

    Called once reporting has caught up (or the drain timeout passed): recorded_at is stored, so one read per
    dossier is enough. Dossiers still missing are counted; the percentiles then leave out the slowest ones.
    """
    token = target.token("auditor", units=["*"], subject="bench-auditor")
    lags: list[float] = []
    problems: dict[str, int] = {}
    missing_since: list[float] = []
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=target.reporting_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=10) as client:

        async def probe(code: str, received_at: str) -> None:
            async with sem:
                for _attempt in range(2):
                    try:
                        r = await client.get(f"/api/v1/dossiers/{code}/timeline")
                    except httpx.HTTPError as exc:
                        problems[type(exc).__name__] = problems.get(type(exc).__name__, 0) + 1
                        continue
                    if r.status_code == 200 and r.json().get("data"):
                        entries = r.json()["data"]
                        entry = next((e for e in entries if ".dossier.received." in e["type"]), entries[0])
                        lags.append((_parse_time(entry["recorded_at"]) - _parse_time(received_at)).total_seconds() * 1000)
                    elif r.status_code == 404:
                        problems["not projected within --drain-timeout"] = (
                            problems.get("not projected within --drain-timeout", 0) + 1)
                        missing_since.append((datetime.now(UTC) - _parse_time(received_at)).total_seconds() * 1000)
                    else:
                        problems[str(r.status_code)] = problems.get(str(r.status_code), 0) + 1
                    return

        await asyncio.gather(*(probe(code, received_at) for code, received_at in samples))
    out: dict[str, Any] = {"lag_ms": percentiles(lags), "sampled": len(samples), "problems": problems}
    if missing_since:  # their lag is at least this long
        out["missing_lag_at_least_ms"] = round(min(missing_since))
    return out


async def wait_projected(target: Target, units: list[str], expected: int, load_end: float, deadline: float) -> dict[str, Any]:
    """Poll reporting's summary of every unit until it counts every accepted dossier."""
    token = target.token("auditor", units=["*"], subject="bench-auditor")
    today = (datetime.now(UTC) + VN_OFFSET).date()
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    counted = 0
    async with httpx.AsyncClient(base_url=target.reporting_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=5) as client:
        sem = asyncio.Semaphore(8)

        async def one(unit: str) -> int:
            async with sem:
                r = await client.get("/api/v1/reports/summary", params={"unit": unit, **params})
                return r.json()["received_total"] if r.status_code == 200 else 0

        while True:
            with contextlib.suppress(httpx.HTTPError):
                counted = sum(await asyncio.gather(*(one(u) for u in units)))
            if counted >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    return {
        "expected": expected,
        "projected": counted,
        "complete": counted >= expected,
        "caught_up_s_after_load_end": round(time.time() - load_end, 2) if counted >= expected else None,
    }


async def stack_phases(target: Target, args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Idle memory, the two intake phases with their event lag, memory after load."""
    tag = uuid.uuid4().hex[:4].upper()
    units = [f"000.00.{i % 100:02d}.B{tag}{i:03d}" for i in range(args.units)]
    tokens = [(u, target.token("clerk", units=[u], subject=f"bench-clerk-{i}")) for i, u in enumerate(units)]
    watch_names = list(target.service_pids) + ["postgres", "broker"]
    await asyncio.sleep(2)  # let start-up work settle before the idle reading
    report["memory"]["idle"] = memory(target.groups())
    expected = 0
    for mode in ("open", "closed"):
        label = f"intake open-loop {args.rate:g}/s" if mode == "open" else f"intake closed-loop c={args.concurrency}"
        _say(f"{label}: {args.warmup:g}s warm-up + {args.duration:g}s measured")
        phase = await run_load(target, args, base_url=target.intake_url, path="/api/v1/dossiers", mode=mode,
                               tokens=tokens, collect=True, watch=target.groups(),
                               metrics={"intake": target.intake_url, "reporting": target.reporting_url})
        load_end = time.time()
        if mode == "closed":
            report["memory"]["after_load"] = memory(target.groups())
        samples = phase.pop("samples")
        expected += phase["accepted_total_incl_warmup"]
        _say(f"{label}: {phase['accepted_per_s']:.1f} accepted/s; waiting for reporting to catch up (at most "
             f"{args.drain_timeout:g}s), then reading the event lag of {len(samples)} dossiers")
        deadline = time.monotonic() + args.drain_timeout
        phase["projection"] = await wait_projected(target, units, expected, load_end, deadline)
        phase["event_lag"] = await measure_lag(target, samples)
        phase["watched"] = watch_names
        report["phases"][f"intake_{mode}"] = phase
    report["units"] = {"count": len(units), "example": units[0]}


async def _asyncpg_admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return parts._replace(path=f"/{database}").geturl()


async def baseline_phases(target: Target, args: argparse.Namespace, report: dict[str, Any], database: str,
                          modes: tuple[str, ...] = ("open", "closed")) -> None:
    """The bare FastAPI + asyncpg endpoint under the same two phases (or only ``modes``)."""
    assert target.postgres_dsn
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"motcua-bench-baseline-{port}.log"
    cmd = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1", "--port", str(port),
           "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "BASELINE_DATABASE_URL": _with_database(target.postgres_dsn, database)},
                                start_new_session=True)
    target.children.append(proc)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"baseline app exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("baseline app not ready in 30s")
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        watch = target.groups(baseline=[proc.pid])
        for mode in modes:
            label = f"baseline open-loop {args.rate:g}/s" if mode == "open" else f"baseline closed-loop c={args.concurrency}"
            _say(f"{label}: {args.warmup:g}s warm-up + {args.duration:g}s measured")
            phase = await run_load(target, args, base_url=url, path="/items", mode=mode, tokens=None, collect=False,
                                   watch=watch)
            phase.pop("samples")
            _say(f"{label}: {phase['accepted_per_s']:.1f} accepted/s")
            report["phases"][f"baseline_{mode}"] = phase
        report["memory"]["after_load"]["baseline"] = memory({"baseline": [proc.pid]}).get("baseline", {})
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        target.children.remove(proc)
        with contextlib.suppress(OSError):
            log_path.unlink()


_PGBENCH_DDL = """
CREATE TABLE IF NOT EXISTS bench_inserts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_sequences (unit varchar(64), day date, last integer NOT NULL, PRIMARY KEY (unit, day));
CREATE TABLE IF NOT EXISTS bench_dossiers (
    code varchar(64) PRIMARY KEY, unit varchar(64) NOT NULL, procedure_code varchar(32) NOT NULL,
    procedure_name text NOT NULL, applicant_name varchar(200) NOT NULL, channel varchar(16) NOT NULL,
    received_at timestamptz NOT NULL, appointment_at timestamptz, received_by text NOT NULL,
    idempotency_key varchar(128), details jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT bench_dossiers_idempotency UNIQUE (unit, idempotency_key));
CREATE INDEX IF NOT EXISTS bench_dossiers_unit ON bench_dossiers (unit);
CREATE TABLE IF NOT EXISTS bench_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL UNIQUE, topic text NOT NULL,
    key text NOT NULL, type text NOT NULL, payload jsonb NOT NULL, headers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz);
CREATE INDEX IF NOT EXISTS bench_outbox_unsent ON bench_outbox (id) WHERE sent_at IS NULL;
"""
_PGBENCH_INSERT = "INSERT INTO bench_inserts (payload) VALUES ('Nguyễn Văn Bench');\n"
# The shape of intake's unit of work, on tables of the same shape as intake's (kept here, not migrated, so the
# script does not break when intake's schema grows): daily sequence upsert, dossier row, outbox row, NOTIFY.
_PGBENCH_INTAKE_TX = """\
\\set u random(1, {units})
BEGIN;
INSERT INTO bench_sequences (unit, day, last) VALUES (format('U%s', :u), current_date, 1) ON CONFLICT (unit, day) DO UPDATE SET last = bench_sequences.last + 1 RETURNING last \\gset
INSERT INTO bench_dossiers (code, unit, procedure_code, procedure_name, applicant_name, channel, received_at, appointment_at, received_by) VALUES (format('U%s-%s-%s', :u, to_char(current_date, 'YYMMDD'), :last), format('U%s', :u), '{procedure}', '{name}', 'Nguyễn Văn Bench', 'counter', now(), now() + interval '5 days', 'bench-clerk');
INSERT INTO bench_outbox (event_id, topic, key, type, payload, headers, created_at) VALUES (gen_random_uuid(), 'bench.intake', format('U%s-%s', :u, :last), 'vn.motcua.dossier.received.v1', CAST('{payload}' AS jsonb), CAST('{headers}' AS jsonb), now());
NOTIFY bench_outbox;
COMMIT;
"""


def _pgbench_script(kind: str, units: int) -> str:
    if kind == "insert":
        return _PGBENCH_INSERT
    name = "Cấp giấy chứng nhận quyền sử dụng đất"
    payload = json.dumps({
        "dossier_code": "U1-260101-0001", "unit": "U1", "procedure_code": PROCEDURE, "procedure_name": name,
        "applicant_name": "Nguyễn Văn Bench", "channel": "counter", "received_at": "2026-01-01T01:00:00+00:00",
        "appointment_at": "2026-01-08T01:00:00+00:00", "due_at_original": "2026-01-08T01:00:00+00:00",
        "received_by": "bench-clerk",
    }, ensure_ascii=False)
    headers = json.dumps({"source": "/motcua/intake", "subject": "U1-260101-0001", "time": "2026-01-01T01:00:00+00:00",
                          "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "actor": "bench-clerk"})
    return _PGBENCH_INTAKE_TX.format(units=units, procedure=PROCEDURE, name=name, payload=payload, headers=headers)


async def pgbench_phases(target: Target, args: argparse.Namespace, report: dict[str, Any], database: str,
                         workdir: Path) -> None:
    """pgbench, simple protocol: one INSERT per transaction, and intake's transaction shape."""
    assert target.postgres_dsn
    pgbench = EmbeddedPostgres(workdir).bin("pgbench")
    await _asyncpg_admin(_with_database(target.postgres_dsn, database), _PGBENCH_DDL)
    parts = urlsplit(target.postgres_dsn)
    for kind in ("insert", "intake_tx"):
        script = workdir / f"pgbench-{kind}.sql"
        script.write_text(_pgbench_script(kind, args.units), encoding="utf-8")
        cmd = [str(pgbench), "-n", "-M", "simple", "-c", str(args.pgbench_clients), "-j", "2",
               "-T", str(max(1, round(args.pgbench_seconds))), "-f", str(script),
               "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres",
               database]
        label = "pgbench insert-only" if kind == "insert" else "pgbench intake-shaped transaction"
        _say(f"{label}: {' '.join(cmd[1:12])} …")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCLIENTENCODING"] = "UTF8"
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        target.children.append(proc)
        try:
            await asyncio.sleep(1.0)  # connections made; measure CPU over the steady part
            watch = target.groups(pgbench=[proc.pid])
            before = cpu_snapshot(watch)
            await asyncio.sleep(max(0.5, args.pgbench_seconds - 2))
            after = cpu_snapshot(watch)
            stdout, stderr = await asyncio.to_thread(proc.communicate, timeout=args.pgbench_seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            target.children.remove(proc)
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", stdout)
        lat = re.search(r"latency average = ([\d.]+) ms", stdout)
        failed = re.search(r"number of failed transactions: (\d+)", stdout)
        report["pgbench"][kind] = {
            "command": " ".join(shlex.quote(c) for c in [pgbench.name, *cmd[1:]]),
            "script": script.read_text(encoding="utf-8"),
            "tps": float(tps.group(1)) if tps else None,
            "latency_avg_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else None,
            "cpu_percent_of_one_core": {k: v for k, v in cpu_percent(before, after).items()
                                        if k in ("postgres", "pgbench", "machine", "cpu_stall_pct")},
        }
        if proc.returncode != 0:
            report["pgbench"][kind]["error"] = f"exit {proc.returncode}: {stderr.strip()[-1000:]}"
            report["notes"].append(f"{label} failed: {stderr.strip().splitlines()[-1] if stderr.strip() else proc.returncode}")
        _say(f"{label}: {report['pgbench'][kind]['tps']} tps")


async def bench(target: Target, args: argparse.Namespace, report: dict[str, Any], workdir: Path) -> None:
    """Every phase in order."""
    await stack_phases(target, args, report)
    database = f"motcua_bench_{uuid.uuid4().hex[:8]}"
    if target.postgres_dsn is None:
        report["notes"].append("no --postgres-url: baseline and pgbench skipped")
        return
    try:
        await _asyncpg_admin(target.postgres_dsn, f'CREATE DATABASE "{database}"')
        if not args.no_baseline:
            await baseline_phases(target, args, report, database)
        if args.pgbench_seconds > 0:
            await pgbench_phases(target, args, report, database, workdir)
    finally:
        with contextlib.suppress(Exception):
            await _asyncpg_admin(target.postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- output --------------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(report: dict[str, Any]) -> str:
    """The readable table."""
    lines: list[str] = []
    m = report["machine"]
    p = report["parameters"]
    lines.append(f"motcua intake benchmark  {report['started_at']}  ({report['elapsed_s']:.0f}s)")
    lines.append(f"machine: {m['cpu_count']} CPUs ({m['cpu_count_physical']} physical), {m['memory_gib']} GiB, "
                 f"Python {m['python']}, {m['platform']}")
    lines.append(f"target: {report.get('target', '-')}; code at {report['git']['commit']}"
                 f"{' + uncommitted changes in services/ or shared/' if report['git']['services_or_shared_modified'] else ''}")
    lines.append(f"command: {report['command']}")
    lines.append(f"dossiers spread over {p['units']} units (one clerk token per unit, the per-unit daily sequence row "
                 f"lock is shared by ~1/{p['units']} of the load); {p['generators']} generator process(es), "
                 "HTTP/1.1 on the socket with httptools, uvloop, keep-alive")
    lines.append("")
    head = (f"{'phase':<30}{'accepted/s':>11}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"  {'errors':<30}{'gen CPU':>8}")
    lines.append(head)
    lines.append("-" * len(head))
    labels = {
        "intake_open": f"intake  open {p['rate']:g}/s",
        "intake_closed": f"intake  closed c={p['concurrency']}",
        "baseline_open": f"baseline open {p['rate']:g}/s",
        "baseline_closed": f"baseline closed c={p['concurrency']}",
    }
    for key, label in labels.items():
        ph = report["phases"].get(key)
        if not ph:
            continue
        lat = ph["latency_ms"]
        errors = ", ".join(f"{k}:{v}" for k, v in ph["errors"].items()) or "none"
        lines.append(f"{label:<30}{_f(ph['accepted_per_s']):>11}{_f(lat['p50']):>9}{_f(lat['p90']):>9}"
                     f"{_f(lat['p99']):>9}{_f(lat['max']):>9}  {errors[:30]:<30}"
                     f"{_f(ph['generator_cpu_percent_of_one_core'], 0) + '%':>8}")
    for kind, label in (("insert", "pgbench insert-only"), ("intake_tx", "pgbench intake-shaped tx")):
        pg = report["pgbench"].get(kind)
        if pg:
            lines.append(f"{label:<30}{_f(pg['tps']):>11}  tps, avg {_f(pg['latency_avg_ms'], 2)} ms, "
                         f"-c {p['pgbench_clients']} -j 2 -M simple, failed {pg['failed']}")
    lines.append("(open loop: latency from the intended send time, so queueing counts; errors: non-201 statuses, "
                 "client exceptions, 'unfinished' = still pending 5s after the window, 'dropped' = not sent because "
                 "--max-in-flight requests were pending)")
    lines.append("")
    lines.append("event lag, intake commit -> reporting projection (timeline recorded_at - received_at):")
    for key in ("intake_open", "intake_closed"):
        ph = report["phases"].get(key)
        if not ph:
            continue
        lag = ph["event_lag"]["lag_ms"]
        proj = ph["projection"]
        caught = (f"all {proj['expected']} projected {proj['caught_up_s_after_load_end']}s after load end"
                  if proj["complete"] else
                  f"only {proj['projected']}/{proj['expected']} projected within --drain-timeout "
                  f"{report['parameters']['drain_timeout']:g}s")
        problems = dict(ph["event_lag"]["problems"])
        if "missing_lag_at_least_ms" in ph["event_lag"]:
            problems["their lag >= ms"] = ph["event_lag"]["missing_lag_at_least_ms"]
        flow = ph.get("event_flow") or {}
        if flow:
            lines.append(f"  {labels[key]:<28} in the window: intake relay published "
                         f"{_f(flow['intake_relay_published_per_s'])}/s, reporting applied "
                         f"{_f(flow['reporting_applied_dossier_received_per_s'])} dossier.received/s; at its end "
                         f"{_f(flow['intake_outbox_backlog_at_end'], 0)} outbox rows unpublished, oldest "
                         f"{_f(flow['intake_outbox_oldest_unpublished_age_s_at_end'])}s")
        lines.append(f"  {labels[key]:<28} p50 {_f(lag['p50'], 0)} ms  p90 {_f(lag['p90'], 0)} ms  "
                     f"p99 {_f(lag['p99'], 0)} ms  max {_f(lag['max'], 0)} ms  (n={lag['n']}"
                     f"{', ' + str(problems) if problems else ''}); {caught}")
    lines.append("")
    groups = ["intake", "workflow", "digitization", "payments", "reporting", "postgres", "broker", "baseline", "machine",
              "cpu_stall_pct"]
    lines.append("CPU in the measured window, % of one core (machine = every process; "
                 f"{m['cpu_count']} CPUs = {100 * m['cpu_count']}%; stall = % of time runnable work waited for a CPU):")
    head = f"  {'phase':<28}" + "".join(f"{g.replace('cpu_stall_pct', 'stall')[:8]:>9}" for g in groups) + f"{'loadgen':>9}"
    lines.append(head)
    for key, label in labels.items():
        ph = report["phases"].get(key)
        if not ph:
            continue
        cpu = ph["cpu_percent_of_one_core"]
        lines.append(f"  {label:<28}" + "".join(f"{_f(cpu.get(g), 0) if g in cpu else '':>9}" for g in groups)
                     + f"{_f(ph['generator_cpu_percent_of_one_core'], 0):>9}")
    for kind, label in (("insert", "pgbench insert-only"), ("intake_tx", "pgbench intake tx")):
        pg = report["pgbench"].get(kind)
        if pg:
            cpu = pg["cpu_percent_of_one_core"]
            lines.append(f"  {label:<28}" + "".join(f"{_f(cpu.get(g), 0) if g in cpu else '':>9}" for g in groups)
                         + f"{'':>9}  pgbench client {_f(cpu.get('pgbench'), 0)}")
    for key in ("intake_open", "intake_closed", "baseline_closed"):
        ph = report["phases"].get(key)
        if ph and ph["cpu_ms_per_accepted"]:
            per = ph["cpu_ms_per_accepted"]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in per.items() if v >= 0.05)
            lines.append(f"  CPU ms per accepted dossier, {labels[key]}: {parts}; all watched "
                         f"{sum(per.values()):.1f} ms + generator")
    lines.append("")
    mem = report["memory"]
    lines.append("resident memory, MiB (RSS; Postgres as PSS summed over its processes):")
    lines.append(f"  {'process':<14}{'idle':>10}{'after load':>12}")
    for name in [*SERVICES, "broker", "postgres", "baseline"]:
        idle = mem.get("idle", {}).get(name)
        after = mem.get("after_load", {}).get(name)
        if not idle and not after:
            continue
        key = "pss_mib" if name == "postgres" else "rss_mib"
        lines.append(f"  {name:<14}{_f(idle.get(key) if idle else None):>10}{_f(after.get(key) if after else None):>12}")
    if report["ratios"]:
        lines.append("")
        lines.append("ratios: " + "; ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    for note in report["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def ratios(report: dict[str, Any]) -> dict[str, str]:
    """Intake figures over the baselines'."""
    out: dict[str, str] = {}
    ph = report["phases"]
    if "intake_closed" in ph and "baseline_closed" in ph and ph["baseline_closed"]["accepted_per_s"]:
        out["intake/baseline max throughput"] = (
            f"{ph['intake_closed']['accepted_per_s'] / ph['baseline_closed']['accepted_per_s']:.2f}x")
    def sustained(key: str) -> bool:  # an overloaded open loop's latency is its queue, not a figure to compare
        return key in ph and ph[key]["accepted_per_s"] >= 0.9 * ph[key]["offered_rate_per_s"]

    if (sustained("intake_open") and sustained("baseline_open") and ph["baseline_open"]["latency_ms"]["p50"]
            and ph["intake_open"]["latency_ms"]["p50"]):
        out["intake/baseline p50 latency at the offered rate"] = (
            f"{ph['intake_open']['latency_ms']['p50'] / ph['baseline_open']['latency_ms']['p50']:.1f}x")
    out.update(cpu_ratios(ph.get("intake_closed"), ph.get("baseline_closed")))
    for kind in ("insert", "intake_tx"):
        pg = report["pgbench"].get(kind)
        if "intake_closed" in ph and pg and pg["tps"]:
            out[f"intake max throughput / pgbench {kind}"] = f"{ph['intake_closed']['accepted_per_s'] / pg['tps']:.2f}x"
    return out


def bare_request_cpu_ms(baseline: dict[str, Any] | None) -> dict[str, float] | None:
    """CPU ms of one bare request (the baseline app and Postgres) in a baseline phase, or None."""
    per = (baseline or {}).get("cpu_ms_per_accepted") or {}
    if not per.get("baseline"):
        return None
    return {"app": per["baseline"], "postgres": per.get("postgres", 0.0),
            "total": round(per["baseline"] + per.get("postgres", 0.0), 3)}


def cpu_ratios(intake: dict[str, Any] | None, baseline: dict[str, Any] | None) -> dict[str, str]:
    """The issue-18 ratios: the whole pipeline's and intake's own CPU per accepted dossier over the bare request's."""
    bare = bare_request_cpu_ms(baseline)
    per = (intake or {}).get("cpu_ms_per_accepted") or {}
    if bare is None or not per:
        return {}
    pipeline = sum(v for k, v in per.items() if k not in ("baseline",))
    out = {"whole pipeline CPU per accepted dossier / bare request (app + Postgres)":
           f"{pipeline:.2f} / {bare['total']:.2f} ms = {pipeline / bare['total']:.1f}x"}
    if per.get("intake"):
        out["intake's own CPU per request / bare app's"] = (
            f"{per['intake']:.2f} / {bare['app']:.2f} ms = {per['intake'] / bare['app']:.1f}x")
    return out


def notes(report: dict[str, Any]) -> list[str]:
    """Caveats the figures need."""
    m = report["machine"]
    out = [f"the load generator, the five services, Postgres and the broker share {m['cpu_count']} CPUs: "
           "throughput is for the whole machine, not per service"]
    for key, ph in report["phases"].items():
        gen = ph["generator_cpu_percent_of_one_core"]
        if gen is not None and gen >= 80 * ph["generators"]:
            out.append(f"{key}: the generator used {gen:.0f}% of a core: it may be the bottleneck (try --generators 2)")
        if ph["mode"] == "open" and ph["accepted_per_s"] < 0.9 * ph["offered_rate_per_s"]:
            out.append(f"{key}: offered {ph['offered_rate_per_s']:g}/s but accepted {ph['accepted_per_s']:g}/s: overloaded, "
                       "its latency is mostly queueing (see the closed-loop phase for capacity)")
        lateness = ph.get("generator_lateness_ms")
        if lateness and lateness["p99"] is not None and lateness["p99"] > 20:
            out.append(f"{key}: requests started up to {lateness['p99']:.0f} ms late (p99) at the generator "
                       "(event loop or connection pool saturated); latency counts it")
        if ph.get("generator_late_start_s", 0) > 0.3:
            out.append(f"{key}: the generator started {ph['generator_late_start_s']:.1f}s late: its CPU window and "
                       "the per-process one are that much apart")
        cpu = ph["cpu_percent_of_one_core"]
        ours = sum(v for k, v in cpu.items() if k not in ("machine", "cpu_stall_pct")) + (gen or 0)
        other = cpu.get("machine", 0) - ours
        if other > 15:
            out.append(f"{key}: {other:.0f}% of a core went to processes outside the benchmark (other work on the "
                       "machine disturbs the figures)")
    return out



# -- entry point ---------------------------------------------------------------------------------------------


def _stop_children(target: Target | None) -> None:
    if target is None:
        return
    for proc in list(target.children):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for aproc in list(target.loadgens):
        if aproc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                aproc.kill()


def main(argv: list[str] | None = None) -> int:
    """Start (or find) the stack, run every phase, write and print the results, stop what was started."""
    args = parse_args(argv)
    started = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "intake",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench.intake", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_info(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "phases": {},
        "pgbench": {},
        "memory": {"idle": {}, "after_load": {}},
        "notes": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="motcua-bench-"))
    exits = contextlib.ExitStack()
    owned: OwnStack | None = None
    target: Target | None = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    status = 0
    try:
        if args.intake_url:
            pg_pid = None
            if args.postgres_url:
                pg_pid = pid_listening_on(urlsplit(args.postgres_url).port or 5432)
            target = Target(
                intake_url=args.intake_url.rstrip("/"),
                reporting_url=args.reporting_url.rstrip("/"),
                private_key_pem=args.private_key.read_text(),
                postgres_dsn=args.postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1) if args.postgres_url else None,
                postgres_pid=pg_pid,
                description=f"running stack at {args.intake_url} / {args.reporting_url}",
            )
            ports = {"intake": urlsplit(args.intake_url).port or 80, "reporting": urlsplit(args.reporting_url).port or 80}
            if ports["intake"] == PORTS["intake"]:  # `make run`: the other services are on their fixed ports
                ports.update({s: PORTS[s] for s in SERVICES if s not in ports})
            for name in SERVICES:
                pid = pid_listening_on(ports[name]) if name in ports else None
                if pid:
                    target.service_pids[name] = pid
            unwatched = [s for s in SERVICES if s not in target.service_pids]
            if unwatched:
                report["notes"].append(f"external stack: {', '.join(unwatched)} not found, so not watched "
                                       "(their CPU counts as outside the benchmark)")
        else:
            _say(f"starting an isolated stack in {workdir}")
            owned = exits.enter_context(own_stack(workdir))
            stack, pg, broker = owned.stack, owned.postgres, owned.broker
            target = Target(
                intake_url=stack.url("intake"),
                reporting_url=stack.url("reporting"),
                private_key_pem=stack.private_key_path.read_text(),
                postgres_dsn=pg.dsn("postgres"),
                service_pids=dict(owned.service_pids),
                postgres_pid=owned.postgres_pid,
                broker_pid=broker.pid,
                description=(f"own isolated stack: embedded Postgres 127.0.0.1:{pg.port} (temp dir), Tansu "
                             f"127.0.0.1:{broker.port}, five services as processes, default settings"),
            )
            _say(f"stack ready in {time.monotonic() - started:.1f}s")
        report["target"] = target.description
        report["stack_start_s"] = round(time.monotonic() - started, 1)
        remaining = args.max_seconds - (time.monotonic() - started)
        asyncio.run(asyncio.wait_for(bench(target, args, report, workdir), timeout=max(10.0, remaining)))
    except (asyncio.TimeoutError, TimeoutError):
        report["notes"].append(f"aborted: the run exceeded --max-seconds {args.max_seconds:g}")
        _say(report["notes"][-1])
        status = 1
    except Exception as exc:  # noqa: BLE001 - reported with the partial results, after cleaning up
        traceback.print_exc()
        report["notes"].append(f"failed: {type(exc).__name__}: {exc}")
        status = 1
    finally:
        _stop_children(target)
        if owned is not None:
            _say("stopping the stack")
            if args.keep:
                for name, proc in owned.stack.services.items():
                    report.setdefault("logs", {})[name] = str(proc.log_path)
        exits.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    try:
        report["ratios"] = ratios(report)
        report["notes"] = [*report["notes"], *notes(report)]
    except Exception:  # noqa: BLE001 - the figures are worth more than the commentary
        traceback.print_exc()
        report.setdefault("ratios", {})
    path = write_results(report, args.out, "intake", "latest.json")
    print()
    try:
        print(render(report))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} (and latest.json)")
    return status


if __name__ == "__main__":
    sys.exit(main())
