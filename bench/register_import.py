"""Register import speed (issue #22): a generated paper register of 50,000 lines over two years, through intake's API.

Starts its own isolated stack (like the other benches) and measures, one after the other:

* the dry run and the commit of the whole file (``POST /api/v1/registers/imports``): lines per second and intake's
  peak resident memory during each request (sampled every 50 ms);
* the projection: how long workflow (cases) and reporting (dossier facts) take to hold every imported dossier;
* the baseline: the same lines parsed by the csv module and written with one asyncpg ``COPY`` into a bare table of
  the same database — the floor of a set-based load on this machine.

Results go to ``bench/results/register-import-<UTC timestamp>.json`` and ``register-import-latest.json``. Nothing
asserts a timing (the tests check what the import does; this measures how fast).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import shlex
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.common import RESULTS, ROOT, _say, git_info, machine_info, own_stack, write_results
from tests.support import registers as gen

UNIT = "000.00.31.H56"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.register_import", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000, help="lines of the generated register (50000)")
    p.add_argument("--drain-timeout", type=float, default=3600, help="max seconds for the projections to catch up (3600)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (bench/results)")
    return p.parse_args(argv)


class PeakMemory:
    """The peak RSS of a process tree while the block runs (sampled in a thread)."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak_mib = pid, every, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        root = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                self.peak_mib = max(self.peak_mib, rss / 1048576)
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _post(client: httpx.AsyncClient, data: bytes, *, commit: bool, pid: int) -> dict[str, Any]:
    before = psutil.Process(pid).memory_info().rss / 1048576
    with PeakMemory(pid) as peak:
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/registers/imports", params={"dry_run": "false" if commit else "true"},
            files={"file": ("so.csv", data, "text/csv")}, timeout=3600,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    body = response.json()
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{response.status_code}: {body.get('detail')}")
    return {
        "status": response.status_code, "seconds": round(seconds, 2), "lines": body["lines"],
        "lines_per_second": round(body["lines"] / seconds, 1), "added": body["added"], "errors": len(body["errors"]),
        "intake_rss_before_mib": round(before, 1), "intake_rss_peak_mib": round(peak.peak_mib, 1),
    }  # fmt: skip


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, UNIT))
    finally:
        await conn.close()


async def _drain(dsns: dict[str, str], rows: int, timeout: float) -> dict[str, Any]:
    queries = {
        "workflow": "SELECT count(*) FROM cases WHERE unit = $1",
        "reporting": "SELECT count(*) FROM dossier_facts WHERE unit = $1",
    }
    started = time.perf_counter()
    done: dict[str, float] = {}
    while len(done) < len(queries) and time.perf_counter() - started < timeout:
        for name, sql in queries.items():
            if name not in done and await _count(dsns[name], sql) >= rows:
                done[name] = time.perf_counter() - started
                _say(f"{name}: {rows} imported dossiers projected in {done[name]:.0f} s")
        await asyncio.sleep(2)
    return {
        name: {"seconds": round(done[name], 1), "dossiers_per_second": round(rows / done[name], 1)} if name in done else {"timed_out": True}
        for name in queries
    }


async def _baseline(dsn: str, data: bytes) -> dict[str, Any]:
    """Parse the same CSV and COPY it into a bare table: the floor of a set-based load."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE baseline_register (" + ", ".join(f"c{i} text" for i in range(12)) + ")")
        started = time.perf_counter()
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
        next(reader)
        records = [tuple(r) for r in reader]
        await conn.copy_records_to_table("baseline_register", records=records)
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {"lines": len(records), "seconds": round(seconds, 3), "lines_per_second": round(len(records) / seconds, 1)}


async def bench(owned: Any, args: argparse.Namespace, report: dict[str, Any]) -> None:
    stack = owned.stack
    now = datetime.now(UTC)
    _say(f"generating a register of {args.rows} lines over two years")
    lines = gen.generate(UNIT, args.rows, now, days=730)
    data = gen.to_csv([x.cells for x in lines])
    report["file"] = {"lines": len(lines), "bytes": len(data), "open": sum(x.outcome == "open" for x in lines)}
    dsns = {s: owned.postgres.dsn(stack.database(s)) for s in ("intake", "workflow", "reporting")}
    pid = owned.service_pids["intake"]
    async with stack.client("intake", "clerk", units=[UNIT], subject="bench-register", timeout=3600) as clerk:
        _say("dry run")
        report["dry_run"] = await _post(clerk, data, commit=False, pid=pid)
        _say(f"dry run: {report['dry_run']}")
        cpu_before = {n: psutil.Process(p).cpu_times() for n, p in owned.service_pids.items()}
        _say("commit")
        report["commit"] = await _post(clerk, data, commit=True, pid=pid)
        _say(f"commit: {report['commit']}")
        report["projection"] = await _drain(dsns, args.rows, args.drain_timeout)
        cpu_after = {n: psutil.Process(p).cpu_times() for n, p in owned.service_pids.items()}
        report["cpu_seconds_commit_and_projection"] = {
            n: round((cpu_after[n].user + cpu_after[n].system) - (cpu_before[n].user + cpu_before[n].system), 1) for n in cpu_after
        }
        _say("the same file again")
        report["again"] = await _post(clerk, data, commit=True, pid=pid)
    report["baseline_copy"] = await _baseline(dsns["intake"], data)


def render(report: dict[str, Any]) -> str:
    rows = [("phase", "lines/s", "seconds", "intake peak RSS MiB")]
    for name in ("dry_run", "commit", "again"):
        if name in report:
            r = report[name]
            rows.append((name, str(r["lines_per_second"]), str(r["seconds"]), str(r["intake_rss_peak_mib"])))
    if "baseline_copy" in report:
        b = report["baseline_copy"]
        rows.append(("baseline: csv + asyncpg COPY", str(b["lines_per_second"]), str(b["seconds"]), "-"))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in rows)
    return f"{text}\nprojection: {report.get('projection')}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "register-import",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", "bench.register_import", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_info(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    workdir = Path(tempfile.mkdtemp(prefix="motcua-register-"))
    status = 0
    try:
        with own_stack(workdir) as owned:
            asyncio.run(bench(owned, args, report))
    except Exception as exc:  # noqa: BLE001 - the partial figures are written with the failure
        report["failed"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    path = write_results(report, args.out, "register-import", "register-import-latest.json")
    print(render(report))
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
