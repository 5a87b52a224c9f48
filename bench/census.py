"""Statements per lifecycle: what each service asks of Postgres for one dossier's life, counted by pg_stat_statements.

    python -m bench.census [--lifecycles 40] [--concurrency 4] [--top 25]

Starts its own stack with ``pg_stat_statements`` preloaded, runs one lifecycle to warm every path, resets the
counts, runs ``--lifecycles`` lifecycles (``--concurrency`` at a time) and waits until reporting has projected each
one's return. Then, per service database: statements executed per lifecycle (with transaction control, which
pg_stat_statements counts too) and the statements that take the most calls. Background work in the window (relays,
drift manifests, sweeps, the DVCQG sender) is counted with it: it is part of what the lifecycles cost.

Each statement is a round trip, and most of a service's CPU per event goes to building, sending and decoding them
(profiles in bench/results/profiles/): this is where to look for a statement that could be folded into another.
Writes ``bench/results/census-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import git_info, machine_info, own_stack, write_results
from bench.lifecycle import (
    Driver,
    StandInLgsp,
    _run,
    _sample,
    measure_lag,
    officials,
    stack_env,
)
from motcua import devstack
from motcua.registry import SERVICES

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.census", description=__doc__.split("\n")[0])
    p.add_argument("--lifecycles", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--top", type=int, default=25, help="statements listed per service")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


async def _reset(dsn_of: dict[str, str]) -> None:
    for dsn in dsn_of.values():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SELECT pg_stat_statements_reset()")
        finally:
            await conn.close()


async def _counts(admin_dsn: str, top: int) -> dict[str, Any]:
    """Per database: every statement's calls and total execution time, most called first."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT d.datname, s.query, s.calls, s.total_exec_time, s.rows
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname LIKE 'motcua_%' AND s.query NOT LIKE '%pg_stat_statements%'
            ORDER BY s.calls DESC
            """
        )
    finally:
        await conn.close()
    out: dict[str, Any] = {}
    for r in rows:
        db = out.setdefault(r["datname"], {"calls": 0, "exec_ms": 0.0, "statements": []})
        db["calls"] += r["calls"]
        db["exec_ms"] += r["total_exec_time"]
        if len(db["statements"]) < top:
            db["statements"].append({"calls": r["calls"], "exec_ms": round(r["total_exec_time"], 1), "rows": r["rows"],
                                     "query": " ".join(r["query"].split())[:300]})
    return out


async def census(owned: Any, args: argparse.Namespace, report: dict[str, Any], lgsp: StandInLgsp) -> None:
    stack = owned.stack
    dsn_of = {s: owned.postgres.dsn(stack.database(s)) for s in SERVICES}
    for dsn in dsn_of.values():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()
    async with lgsp.running(), Driver({s: stack.url(s) for s in SERVICES}, officials(stack.private_key_path.read_text(), 4),
                                      step_timeout=60) as driver:
        await driver.lifecycle(0, {})
        await measure_lag(owned, [], 1)
        await asyncio.sleep(2)  # the warm-up's tail (syncs, consumers) out of the window
        await _reset(dsn_of)
        started = time.monotonic()
        records: list[dict[str, Any]] = [{} for _ in range(args.lifecycles)]
        sem = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> None:
            async with sem:
                await driver.lifecycle(i + 1, records[i])

        await asyncio.gather(*(one(i) for i in range(args.lifecycles)))
        lag = await measure_lag(owned, _sample(records, len(records)), 60)
        await asyncio.sleep(1)
        report["window_s"] = round(time.monotonic() - started, 1)
        report["lifecycles_projected"] = len(records) - lag["dossiers_incomplete_within_timeout"]
        report["polls"] = dict(driver.polls)
    counts = await _counts(dsn_of[SERVICES[0]], args.top)  # the view is in each database that has the extension
    n = args.lifecycles
    name_of = {stack.database(s): s for s in SERVICES}
    counts = {name_of.get(db, db): c for db, c in counts.items()}
    report["per_lifecycle"] = {s: round(c["calls"] / n, 1) for s, c in counts.items()}
    report["databases"] = counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "census",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m bench.census " + " ".join(argv or []),
        "machine": machine_info(),
        "git": git_info(),
        "parameters": {"lifecycles": args.lifecycles, "concurrency": args.concurrency},
    }
    devstack.PG_SERVER_SETTINGS["shared_preload_libraries"] = "pg_stat_statements"
    devstack.PG_SERVER_SETTINGS["pg_stat_statements.track_utility"] = "on"  # BEGIN, COMMIT, NOTIFY are round trips too
    workdir = Path(tempfile.mkdtemp(prefix="motcua-bench-census-"))
    lgsp = StandInLgsp()
    with own_stack(workdir, env=stack_env(workdir, lgsp)) as owned:
        _run(census(owned, args, report, lgsp))
    path = write_results(report, args.out, "census", "census-latest.json")
    print(f"statements per lifecycle ({args.lifecycles} lifecycles, {args.concurrency} at a time, "
          f"{report['window_s']} s, projected {report['lifecycles_projected']}):")
    for db, c in sorted(report["databases"].items(), key=lambda kv: -kv[1]["calls"]):
        print(f"  {db:24s} {c['calls'] / args.lifecycles:7.1f} statements, {c['exec_ms'] / args.lifecycles:6.1f} ms in Postgres")
        for st in c["statements"][:8]:
            print(f"      {st['calls'] / args.lifecycles:6.1f}  {st['query'][:150]}")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
