"""Overload benchmark: ``make bench-overload`` (``python -m bench.overload``), the proofs of admission control.

On an isolated stack of its own (as ``bench.intake`` starts one), in one run:

1. **capacity**: intake ``POST /api/v1/dossiers`` in a closed loop (``--concurrency`` workers): accepted/s;
2. **overload**: an open loop offering ``--factor`` × that capacity: accepted/s against the capacity, latency of the
   accepted requests (201) and of the refused ones (503 with Retry-After), counted from the intended send time;
   1 and 2 are repeated ``--rounds`` times (3), each from a drained pipeline, because on 2 shared cores one
   15-second capacity figure varies by a quarter from run to run: the share is the rounds' overload over their
   capacity, the latencies the worst round's;
3. **exactly once**: after the load, every accepted dossier is in intake, in workflow and in reporting's report exactly
   once (hand count = report), and the refused left no trace (intake holds as many dossiers as there were 201s);
4. **portal burst**: ``--burst`` signed online dossiers from the portal webhook within ``--burst-seconds``, sent by a
   client that honours ``Retry-After`` (503 and 429) and resends until each is accepted, then delivers each once more:
   every portal id is accepted once, and in order (refusals, one 201, then a 200 with the same code).

Results go to ``bench/results/overload-<UTC timestamp>.json`` and ``overload-latest.json``. Nothing asserts a timing:
the figures are written, with the targets of issue 19 next to them (p99 of the accepted < 1 s, refusals < 50 ms,
throughput ≥ 90 % of the capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import RESULTS, ROOT, _say, git_info, machine_info, own_stack, write_results
from bench.intake import PROCEDURE, Target, run_load, wait_projected
from shared.webhooks import signature

PORTAL_SECRET = "bench-portal-secret-overload"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of capacity then overload (3): the throughput share is every round's overload over "
                        "every round's capacity, the latencies the worst round's")
    p.add_argument("--duration", type=float, default=15, help="measured seconds of each load phase (15)")
    p.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each phase (3)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="workers of the capacity phase (8: the write slots and as many queued, so none is refused)")
    p.add_argument("--factor", type=float, default=5, help="the overload's offered rate, × the capacity (5)")
    p.add_argument("--units", type=int, default=20, help="units the dossiers are spread over (20)")
    p.add_argument("--burst", type=int, default=2000, help="portal dossiers in the burst (2000)")
    p.add_argument("--burst-seconds", type=float, default=2, help="seconds the burst is sent in (2)")
    p.add_argument("--drain-timeout", type=float, default=120, help="max seconds for the projections to catch up (120)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (bench/results)")
    return p.parse_args(argv)


def _load_args(args: argparse.Namespace, *, rate: float) -> argparse.Namespace:
    """What ``bench.intake.run_load`` reads."""
    return argparse.Namespace(
        generators=1, concurrency=args.concurrency, rate=rate, warmup=args.warmup, duration=args.duration,
        request_timeout=10.0, max_in_flight=20_000, open_connections=256, max_requests=500_000, lag_samples=1,
    )


async def _count(dsn: str, sql: str, *params: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *params))
    finally:
        await conn.close()


async def exactly_once(target: Target, dsns: dict[str, str], units: list[str], accepted: int, args: argparse.Namespace) -> dict[str, Any]:
    """Intake, workflow and reporting each hold every accepted dossier once, and nothing more."""
    load_end = time.time()
    projected = await wait_projected(target, units, accepted, load_end, time.monotonic() + args.drain_timeout)
    intake = await _count(dsns["intake"], "SELECT count(*) FROM dossiers WHERE unit = ANY($1::text[])", units)
    intake_codes = await _count(dsns["intake"], "SELECT count(DISTINCT code) FROM dossiers WHERE unit = ANY($1::text[])", units)
    deadline = time.monotonic() + args.drain_timeout
    while True:
        workflow = await _count(dsns["workflow"], "SELECT count(*) FROM cases WHERE unit = ANY($1::text[])", units)
        if workflow >= accepted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return {
        "accepted_201": accepted,
        "intake_dossiers": intake,
        "intake_distinct_codes": intake_codes,
        "workflow_cases": workflow,
        "reporting_received_total": projected["projected"],
        "reporting_caught_up_s_after_load_end": projected["caught_up_s_after_load_end"],
        "exactly_once": intake == intake_codes == workflow == projected["projected"] == accepted,
        "refused_left_no_trace": intake == accepted,
    }


async def pace(dsns: dict[str, str], units: list[str], stop: asyncio.Event) -> dict[str, Any]:
    """While the overload lasts: dossiers stored by intake and projected by reporting, counted once a second.

    Whether reporting keeps pace with intake at saturation (issue 19), and if not, at what rate it projects.
    """
    intake, reporting = await asyncpg.connect(dsns["intake"]), await asyncpg.connect(dsns["reporting"])
    samples: list[tuple[float, int, int]] = []
    try:
        while True:
            samples.append((
                time.monotonic(),
                int(await intake.fetchval("SELECT count(*) FROM dossiers WHERE unit = ANY($1::text[])", units)),
                int(await reporting.fetchval(
                    "SELECT count(*) FROM dossier_facts WHERE unit = ANY($1::text[]) AND received_at IS NOT NULL", units)),
            ))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if stop.is_set():
                break
    finally:
        await intake.close()
        await reporting.close()
    (t0, i0, r0), (t1, i1, r1) = samples[0], samples[-1]
    seconds = max(t1 - t0, 1e-9)
    return {
        "seconds": round(seconds, 1),
        "intake_stored_per_s": round((i1 - i0) / seconds, 1),
        "reporting_projected_per_s": round((r1 - r0) / seconds, 1),
        "backlog_at_load_end": i1 - r1,
        "peak_backlog": max(i - r for _t, i, r in samples),
    }


def _signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    return raw, {"X-Portal-Timestamp": stamp, "X-Portal-Signature": "sha256=" + signature(PORTAL_SECRET, stamp, raw),
                 "Content-Type": "application/json"}  # fmt: skip


async def portal_burst(target: Target, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    """``--burst`` dossiers in ``--burst-seconds``; each resent after Retry-After until the portal gets its 201 or 200.

    Then the portal delivers each accepted dossier once more (its own at-least-once redelivery), which must answer
    200 with the same code. In order per portal id means each id's answers, refusals aside, read: one 201, then 200.
    """
    unit = f"000.00.01.P{uuid.uuid4().hex[:6].upper()}"
    ids = [f"DVC-BURST-{uuid.uuid4().hex[:8]}-{i:05d}" for i in range(args.burst)]
    outcome: dict[str, list[int]] = {}
    codes: dict[str, set[str]] = {}
    waits: list[float] = []
    done_at: list[float] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=target.intake_url, limits=limits, timeout=30) as client:

        async def push(index: int, portal_id: str) -> None:
            await asyncio.sleep(index * args.burst_seconds / args.burst)
            body = {"portal_dossier_id": portal_id, "unit": unit, "procedure_code": PROCEDURE,
                    "applicant": {"kind": "citizen", "name": f"Trần Thị Cổng {index}", "id_number": f"00120300{index % 10000:04d}"},
                    "submitted_at": datetime.now(UTC).isoformat(), "return_channel": "online"}  # fmt: skip
            while True:
                raw, headers = _signed(body)  # a fresh timestamp each time: the webhook refuses replays of one signature
                try:
                    response = await client.post("/api/v1/portal/dossiers", content=raw, headers=headers)
                except httpx.HTTPError:
                    outcome.setdefault(portal_id, []).append(0)
                    await asyncio.sleep(1)
                    continue
                outcome.setdefault(portal_id, []).append(response.status_code)
                if response.status_code in (200, 201):
                    codes.setdefault(portal_id, set()).add(response.json()["code"])
                    if len(codes[portal_id]) == 1 and outcome[portal_id].count(201) + outcome[portal_id].count(200) == 1:
                        done_at.append(time.monotonic() - started)
                        await asyncio.sleep(1)  # the redelivery comes later, signed anew (the same signature is a replay)
                        continue
                    return
                if response.status_code not in (429, 503):
                    raise RuntimeError(f"portal push {portal_id}: {response.status_code} {response.text[:300]}")
                wait = float(response.headers.get("retry-after", "1"))
                waits.append(wait)
                await asyncio.sleep(wait)

        await asyncio.gather(*(push(i, pid) for i, pid in enumerate(ids)))
    stored = await _count(dsn, "SELECT count(*) FROM dossiers WHERE unit = $1", unit)
    distinct = await _count(dsn, "SELECT count(DISTINCT portal_dossier_id) FROM dossiers WHERE unit = $1", unit)
    answered = [[code for code in h if code not in (0, 429, 503)] for h in outcome.values()]
    in_order = len(answered) == len(ids) and all(h == [201, 200] for h in answered)
    statuses: dict[str, int] = {}
    for history in outcome.values():
        for code in history:
            statuses[str(code)] = statuses.get(str(code), 0) + 1
    return {
        "sent_dossiers": len(ids),
        "requests": sum(len(h) for h in outcome.values()),
        "status_counts": statuses,
        "retry_after_waits": len(waits),
        "all_accepted_in_s": round(max(done_at), 2) if done_at else None,
        "stored_dossiers": stored,
        "distinct_portal_ids": distinct,
        "one_code_per_portal_id": all(len(c) == 1 for c in codes.values()) and len(codes) == len(ids),
        "in_order_per_portal_id": in_order,
        "exactly_once": stored == distinct == len(ids) and in_order,
    }


async def bench(target: Target, dsns: dict[str, str], args: argparse.Namespace, report: dict[str, Any]) -> None:
    """``--rounds`` of capacity then overload, each from a drained pipeline; exactly-once; the portal burst."""
    tag = uuid.uuid4().hex[:4].upper()
    units = [f"{i + 1:03d}.01.01.O{tag}" for i in range(args.units)]  # no zero group: each is one unit, not a roll-up
    tokens = [(u, target.token("clerk", units=[u], subject=f"bench-clerk-{i}")) for i, u in enumerate(units)]
    rounds: list[dict[str, Any]] = []
    accepted = 0
    for number in range(1, args.rounds + 1):
        _say(f"round {number}: capacity, closed loop c={args.concurrency}, {args.warmup:g}s + {args.duration:g}s")
        closed = await run_load(target, _load_args(args, rate=1), base_url=target.intake_url, path="/api/v1/dossiers",
                                mode="closed", tokens=tokens, collect=False, watch=target.groups())
        accepted += closed["accepted_total_incl_warmup"]
        _say("waiting for the pipeline to drain, so the overload starts from the same state")
        closed["drain_after_load"] = await wait_projected(target, units, accepted, time.time(),
                                                          time.monotonic() + args.drain_timeout)
        capacity = closed["accepted_per_s"]
        rate = round(capacity * args.factor, 1)
        _say(f"round {number}: capacity {capacity}/s; overload: open loop at {rate}/s")
        stop = asyncio.Event()
        pacing = asyncio.create_task(pace(dsns, units, stop))
        try:
            opened = await run_load(target, _load_args(args, rate=rate), base_url=target.intake_url,
                                    path="/api/v1/dossiers", mode="open", tokens=tokens, collect=False,
                                    watch=target.groups())
        finally:
            stop.set()
        opened["pace_during_overload"] = await pacing
        accepted += opened["accepted_total_incl_warmup"]
        for phase in (closed, opened):
            phase.pop("samples", None)
        rounds.append({"capacity_closed": closed, "overload_open": opened,
                       "share": round(opened["accepted_per_s"] / capacity, 3) if capacity else None})  # fmt: skip
        _say(f"round {number}: {opened['accepted_per_s']}/s accepted ({rounds[-1]['share']} of capacity)")
        if number < args.rounds:
            opened["drain_after_load"] = await wait_projected(target, units, accepted, time.time(),
                                                              time.monotonic() + args.drain_timeout)
    report["rounds"] = rounds
    _say("checking every accepted dossier is everywhere once")
    report["exactly_once"] = await exactly_once(target, dsns, units, accepted, args)
    _say(f"portal burst: {args.burst} signed dossiers in {args.burst_seconds:g}s, resent after Retry-After")
    report["portal_burst"] = await portal_burst(target, dsns["intake"], args)

    def worst(status: str) -> float | None:
        p99s = [(r["overload_open"].get("latency_ms_by_status", {}).get(status) or {}).get("p99") for r in rounds]
        return max((v for v in p99s if v is not None), default=None)

    capacity_sum = sum(r["capacity_closed"]["accepted_per_s"] for r in rounds)
    overload_sum = sum(r["overload_open"]["accepted_per_s"] for r in rounds)
    accepted_p99, refused_p99 = worst("201"), worst("503")
    share = round(overload_sum / capacity_sum, 3) if capacity_sum else None
    report["targets"] = {
        "accepted_p99_ms": accepted_p99,  # the worst round's
        "accepted_p99_under_1s": accepted_p99 is not None and accepted_p99 < 1000,
        "refused_p99_ms": refused_p99,
        "refused_p99_under_50ms": refused_p99 is None or refused_p99 < 50,
        "throughput_share_of_capacity": share,  # every round's overload over every round's capacity
        "throughput_share_by_round": [r["share"] for r in rounds],
        "throughput_at_least_90pct": share is not None and share >= 0.9,
    }


def render(report: dict[str, Any]) -> str:
    """The figures for a person."""
    lines = []
    for number, r in enumerate(report["rounds"], 1):
        closed, opened = r["capacity_closed"], r["overload_open"]
        by_status = opened.get("latency_ms_by_status", {})
        lines += [
            f"round {number}: capacity (closed loop c={closed['concurrency']}) {closed['accepted_per_s']} accepted/s, "
            f"p99 {closed['latency_ms'].get('p99')} ms; overload (open loop {opened['offered_rate_per_s']}/s) "
            f"{opened['accepted_per_s']} accepted/s ({r['share']} of capacity); statuses {opened['status_counts']}",
            f"  accepted (201) latency ms: {by_status.get('201')}",
            f"  refused (503) latency ms: {by_status.get('503')}",
            f"  CPU % of one core: {opened['cpu_percent_of_one_core']}",
            f"  pace during the overload: {opened['pace_during_overload']}",
        ]
    lines += [
        f"exactly once: {report['exactly_once']}",
        f"portal burst: {report['portal_burst']}",
        f"targets: {report['targets']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start a stack, run, write and print."""
    args = parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "overload",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", "bench.overload", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_info(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    workdir = Path(tempfile.mkdtemp(prefix="motcua-overload-"))
    status = 0
    try:
        with own_stack(workdir, env={"INTAKE_PORTAL_WEBHOOK_SECRET": PORTAL_SECRET}) as owned:
            target = Target(
                intake_url=owned.stack.url("intake"), reporting_url=owned.stack.url("reporting"),
                private_key_pem=owned.stack.private_key_path.read_text(), postgres_dsn=owned.postgres.dsn("postgres"),
                service_pids=dict(owned.service_pids), postgres_pid=owned.postgres_pid, broker_pid=owned.broker.pid,
                description="own isolated stack, default settings (admission control as shipped)",
            )
            dsns = {s: owned.postgres.dsn(owned.stack.database(s)) for s in ("intake", "workflow", "reporting")}
            asyncio.run(bench(target, dsns, args, report))
    except Exception as exc:  # noqa: BLE001 - the partial figures are written with the failure
        report["failed"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    path = write_results(report, args.out, "overload", "overload-latest.json")
    if "rounds" in report and "targets" in report:
        print(render(report))
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
