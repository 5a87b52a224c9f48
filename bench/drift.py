"""Drift benchmark: what the drift check costs (``python -m bench.drift``).

An embedded Postgres of its own (temp dir, free port), two databases migrated as the services migrate them: intake's
(the producer) and workflow's (a consumer). Nothing else runs; the costs measured are the database work of the code
the services run (``shared.drift``), in this process.

1. **Load.** ``--rows`` outbox rows at intake (``dossier.received``, spread evenly over the last two Vietnamese days,
   already sent), written by set-based SQL.
2. **Announce.** ``announce`` once, as the first round after a start does: every row new since the cursor and the
   recent days again. Measured: seconds, manifests written, and their bytes on the wire.
3. **Record.** Every manifest through workflow's real handler (``on_manifest``), one transaction each, as the
   consumer would. Workflow's inbox holds every announced event but ``--missing`` of them.
4. **Check.** ``drift_report`` ``--repeat`` times (p50/p90/max in ms): what ``GET /api/v1/admin/drift`` and the
   periodic gauge pay. It must name exactly the ``--missing`` events left out, or the run fails.

Results: ``bench/results/drift-<UTC timestamp>.json`` and ``bench/results/drift-latest.json``. Nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.common import RESULTS, percentiles
from motcua.devstack import EmbeddedPostgres, free_port
from motcua.migrate import upgrade
from services.intake.settings import IntakeSettings
from services.workflow.settings import WorkflowSettings
from shared.clock import SystemClock
from shared.db import Database
from shared.drift import (
    MANIFEST,
    DriftScope,
    announce,
    drift_report,
    on_manifest,
    settle,
)
from shared.envelope import Envelope
from shared.events import DossierReceived, OutboxManifest

_LOAD = text(
    """
    INSERT INTO outbox (event_id, topic, key, type, payload, headers, created_at, sent_at)
    SELECT gen_random_uuid(), 'bench.intake', 'K' || g, :type, '{}'::jsonb,
           jsonb_build_object('source', '/motcua/intake', 'subject', 'K' || g, 'time', now()::text),
           now() - (interval '47 hours') * (g::float / :rows), now()
    FROM generate_series(1, :rows) AS g
    """
)


async def run(rows: int, missing: int, repeat: int) -> dict:
    """Load, announce, record and check; the figures."""
    with tempfile.TemporaryDirectory(prefix="motcua-bench-drift-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pgdata", port=free_port())
        postgres.start()
        try:
            urls = {}
            for service in ("intake", "workflow"):
                postgres.ensure_database(f"motcua_{service}_bench")
                urls[service] = postgres.dsn(f"motcua_{service}_bench")
                await asyncio.to_thread(upgrade, service, urls[service])
            return await _measure(urls, rows, missing, repeat)
        finally:
            postgres.stop()


async def _measure(urls: dict[str, str], rows: int, missing: int, repeat: int) -> dict:
    clock = SystemClock()
    intake = Database(urls["intake"], service="intake", namespace="bench", clock=clock, pool_size=2)
    workflow = Database(urls["workflow"], service="workflow", namespace="bench", clock=clock, pool_size=2)
    intake_settings = IntakeSettings(database_url=urls["intake"])
    workflow_settings = WorkflowSettings(database_url=urls["workflow"], drift_grace_seconds=0)
    try:
        async with intake.unit_of_work() as tx:
            await tx.session.execute(_LOAD, {"type": DossierReceived.type, "rows": rows})

        started = time.perf_counter()
        done = await announce(intake, intake_settings)
        announce_seconds = time.perf_counter() - started

        async with intake.sessions() as session:
            manifests = (
                await session.execute(
                    text("SELECT event_id::text, payload::text, headers FROM outbox WHERE type = :t ORDER BY id"),
                    {"t": MANIFEST},
                )
            ).all()
        wire_bytes = sum(len(payload.encode()) for _, payload, _ in manifests)
        started = time.perf_counter()
        handled = frozenset({DossierReceived.type})
        for event_id, payload, headers in manifests:
            envelope = Envelope(
                id=event_id,
                type=MANIFEST,
                source=headers["source"],
                subject=headers["subject"],
                time=datetime.fromisoformat(headers["time"]),
                data=json.loads(payload),
            )
            event = envelope.event()
            assert isinstance(event, OutboxManifest)
            async with workflow.unit_of_work() as tx:
                await on_manifest(tx, event, envelope, handled=handled)
        record_seconds = time.perf_counter() - started

        async with intake.sessions() as session:
            ids = [r[0] for r in (await session.execute(text("SELECT event_id::text FROM outbox WHERE type <> :t ORDER BY id"), {"t": MANIFEST})).all()]
        left_out = set(ids[:: max(1, len(ids) // missing)][:missing])
        async with workflow.unit_of_work() as tx:
            await tx.session.execute(
                text(
                    'INSERT INTO inbox (event_id, type, subject, topic, partition, "offset") '
                    "SELECT id, :type, 'K', 'bench.intake', 0, 0 FROM unnest(CAST(:ids AS text[])) AS id"
                ),
                {"type": DossierReceived.type, "ids": [i for i in ids if i not in left_out]},
            )
            await tx.session.execute(text("ANALYZE inbox"))
            await tx.session.execute(text("ANALYZE drift_expected"))

        scope = DriftScope("workflow", ("intake",), handled)

        async def _checks() -> list[float]:
            timings = []
            for _ in range(repeat):
                started = time.perf_counter()
                async with workflow.reading() as tx:
                    report = await drift_report(tx, scope, workflow_settings, limit=1000)
                timings.append((time.perf_counter() - started) * 1000)
                named = {i for row in report.data for i in row.missing_event_ids}
                if report.missing != len(left_out) or named != left_out or report.announced != rows:
                    raise SystemExit(f"the check is wrong: {report.missing} missing, {report.announced} announced")
            return timings

        unsettled = await _checks()  # every event looked up in the inbox (manifests that arrived before their events)
        started = time.perf_counter()
        async with workflow.unit_of_work() as tx:
            settled = await settle(tx)
        settle_seconds = time.perf_counter() - started
        timings = await _checks()  # the steady state: only what was never seen applied is looked up
        return {
            "rows": rows,
            "missing": missing,
            "announce": {"seconds": round(announce_seconds, 2), "manifests": done.manifests, "events": done.events,
                         "wire_bytes": wire_bytes, "bytes_per_event": round(wire_bytes / max(1, done.events), 1)},
            "record_seconds": round(record_seconds, 2),
            "check_ms_before_settling": percentiles(unsettled),
            "settle": {"seconds": round(settle_seconds, 2), "rows": settled},
            "check_ms": percentiles(timings),
        }
    finally:
        await intake.dispose()
        await workflow.dispose()


def main() -> None:
    """Run and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="outbox rows at the producer")
    parser.add_argument("--missing", type=int, default=25, help="announced events left out of the consumer's inbox")
    parser.add_argument("--repeat", type=int, default=10, help="drift checks measured")
    args = parser.parse_args()
    figures = asyncio.run(run(args.rows, args.missing, args.repeat))
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    figures["at"] = datetime.now(UTC).isoformat()
    RESULTS.mkdir(parents=True, exist_ok=True)
    text_ = json.dumps(figures, indent=2) + "\n"
    (RESULTS / f"drift-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json").write_text(text_)
    (RESULTS / "drift-latest.json").write_text(text_)
    print(text_)


if __name__ == "__main__":
    main()
