"""The ``motcua`` command: run the local stack, read its messages, serve one service, migrate, issue tokens, export schemas."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from motcua.registry import SERVICES, service, settings_class

if TYPE_CHECKING:
    from motcua.localstack import Stack

__all__ = ["main", "openapi_document", "settings_class"]


def home() -> Path:
    """Where the local stack keeps its data (``MOTCUA_HOME``, default ``./.motcua``)."""
    return Path(os.environ.get("MOTCUA_HOME", ".motcua")).resolve()


def local_token(subject: str, roles: list[str], units: list[str], **claims: object) -> str | None:
    """A bearer token signed with the local stack's key (``MOTCUA_JWT_PRIVATE_KEY_FILE``); None, said on stderr, without it."""
    from shared.auth import issue_token

    key_file = Path(os.environ.get("MOTCUA_JWT_PRIVATE_KEY_FILE", home() / "jwt" / "jwt-private.pem"))
    if not key_file.exists():
        print(f"no signing key at {key_file}: run 'make run' once, or set MOTCUA_JWT_PRIVATE_KEY_FILE", file=sys.stderr)
        return None
    return issue_token(key_file.read_text(), subject=subject, roles=roles, units=units, **claims)


def database_name(name: str, suffix: str = "") -> str:
    """One database per service."""
    return f"motcua_{name}{suffix}"


def _exit_after_shutdown(*_: object) -> None:
    """SIGTERM outside uvicorn's own handling: exit 0 at once, skipping the interpreter's last garbage collection.

    uvicorn drains on SIGTERM (requests, then the lifespan: relay, consumer, loops, pools), then raises the signal
    again for the handler it found. With the default handler the process would die of it (exit 143) after a
    complete shutdown; this one exits 0. Before that, ``gc.freeze()`` puts every live object out of the
    collector's reach: the collections of interpreter teardown otherwise walk the whole heap of a service, which
    measured 5 to 8 s of a 7 to 9 s stop (tests/faults/test_shutdown.py). Nothing is lost by it: the atexit
    hooks (trace export) still run, and the process's memory goes back to the system with it.
    """
    import gc

    gc.freeze()
    sys.exit(0)


def _freeze_startup_heap() -> None:
    """Put the objects of imports and the built app (about 200,000) out of the cyclic collector's reach.

    They live as long as the process, yet every full collection walked them all: about 100 ms of one core on a quiet
    machine, several hundred ms of wall time on a busy one, during which the event loop answered nothing, so even a
    refusal under overload waited for it (issue 19). After ``gc.freeze()`` a full collection walks only what was
    made since. The price: an object alive now that later dies in a reference cycle is never collected; what is
    alive now is the app, its modules and their caches, which live as long as the process. Only here, at the
    process's entry: the tests build many apps in one process and must free them.
    """
    import gc

    gc.collect()
    gc.freeze()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run one service with uvicorn."""
    import uvicorn

    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    settings = settings_class(args.service)()
    app = service(args.service).create_app(settings)
    _freeze_startup_heap()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


async def _declare_demo_units(stack: Stack) -> None:
    """The demonstration province's two-tier unit registry, entered through intake's API (again: the same entries)."""
    from motcua import demo

    async with stack.client("intake", "admin", units=["*"], subject="motcua-run") as admin:
        await demo.declare_units(admin)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring each service's database to the newest revision (with ``--wait``: wait until someone else has)."""
    from motcua.migrate import upgrade

    if args.wait:
        return _wait_for_migrations(args.services or list(SERVICES), args.timeout)
    for name in args.services or SERVICES:
        settings = settings_class(name)()
        upgrade(name, settings.database_url)
        print(f"{name}: migrated")
    return 0


def _wait_for_migrations(names: list[str], timeout: float) -> int:
    """Poll each database until it is at the code's head revision; 1 with the reason after ``timeout`` seconds."""
    import asyncio

    from motcua.migrate import wait_for_head

    deadline = time.monotonic() + timeout
    for name in names:
        settings = settings_class(name)()
        try:
            waited = asyncio.run(
                wait_for_head(name, settings.database_url, timeout=max(0.0, deadline - time.monotonic()))
            )
        except TimeoutError as exc:
            print(f"motcua migrate --wait: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: schema at the code's head (waited {waited:.1f}s)", flush=True)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token signed with the local key."""
    from datetime import timedelta

    token = local_token(
        args.sub or f"{args.role[0]}@{(args.unit or ['*'])[0]}",
        args.role,
        args.unit or [],
        name=args.name,
        ttl=timedelta(hours=args.hours),
    )
    if token is None:
        return 2
    print(token)
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    """Move (or show) the clock of every service of the running local stack."""
    from datetime import datetime

    import httpx

    from motcua.registry import PORTS

    token = local_token("clock-cli", ["admin"], ["*"])
    if token is None:
        return 2
    headers = {"Authorization": f"Bearer {token}"}
    failed = False
    for name in SERVICES:
        url = f"http://127.0.0.1:{PORTS[name]}/api/v1/admin/clock"
        try:
            if args.clock_command == "set":
                instant = datetime.fromisoformat(args.instant)
                response = httpx.put(url, json={"now": instant.isoformat()}, headers=headers, timeout=5)
            else:
                response = httpx.get(url, headers=headers, timeout=5)
        except httpx.HTTPError as exc:
            print(f"{name:<13} unreachable: {exc}", file=sys.stderr)
            failed = True
            continue
        body = response.json()
        if response.status_code != 200:
            print(f"{name:<13} refused: {body.get('detail', body)}", file=sys.stderr)
            failed = True
        else:
            print(f"{name:<13} {body['now']}  (offset {body['offset_seconds']:.0f}s)")
    return 1 if failed else 0


def cmd_outbox_replay(args: argparse.Namespace) -> int:
    """Queue a service's outbox rows sent since an instant to be published again (its relay sends them, in order)."""
    import asyncio
    from datetime import datetime

    from shared.clock import SystemClock
    from shared.db import Database
    from shared.outbox import ReplayRefused, replay

    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        print(f"--since {args.since!r} is not an ISO 8601 instant (e.g. 2026-12-01T09:00:00+07:00)", file=sys.stderr)
        return 2
    settings = settings_class(args.service)()

    async def _replay() -> int:
        db = Database(settings.database_url, service=args.service, namespace=settings.kafka_topic_namespace,
                      clock=SystemClock(), pool_size=1)  # fmt: skip
        try:
            return await replay(db, args.service, since, retention_hours=settings.outbox_retention_hours)
        finally:
            await db.dispose()

    try:
        queued = asyncio.run(_replay())
    except ReplayRefused as exc:
        print(f"{args.service}: not replayed: {exc}", file=sys.stderr)
        return 2
    print(f"{args.service}: {queued} outbox rows sent since {since.isoformat()} queued; its relay publishes them again")
    return 0


def cmd_reporting_rebuild(args: argparse.Namespace) -> int:
    """Rebuild reporting's projections from its own hash-chained event log."""
    from services.reporting.app import rebuild

    return rebuild()


def _drift_targets(args: argparse.Namespace) -> dict[str, str] | None:
    """The services ``motcua drift`` asks: the local stack's, or those of ``--url NAME=URL``; None after a bad name."""
    urls = {name: f"http://127.0.0.1:{port}" for name, port in local_ports().items()}
    for given in args.url or []:
        name, _, url = given.partition("=")
        if name not in SERVICES or not url:
            print(f"--url {given}: expected NAME=URL with NAME one of {', '.join(SERVICES)}", file=sys.stderr)
            return None
        urls[name] = url.rstrip("/")
    chosen = args.service or list(SERVICES)
    unknown = [name for name in chosen if name not in SERVICES]
    if unknown:
        print(f"no service {', '.join(unknown)}: the services are {', '.join(SERVICES)}", file=sys.stderr)
        return None
    return {name: urls[name] for name in chosen}


def cmd_drift(args: argparse.Namespace) -> int:
    """Ask every service what it applied of what its producers announced (check), or make them announce (announce).

    ``check`` prints one line per consumer, producer and day, and each missing event id under its line; exit code 1
    when anything is missing, 2 when a service could not be asked (and nothing is missing), else 0.
    """
    import httpx

    targets = _drift_targets(args)
    if targets is None:
        return 2
    token = local_token("drift-cli", ["admin"], ["*"])
    if token is None:
        return 2
    headers = {"Authorization": f"Bearer {token}"}
    unreachable = missing = 0
    if args.drift_command == "check":
        print(f"{'consumer':<13} {'producer':<13} {'day':<10} {'announced':>9} {'applied':>8} {'dead':>5} "
              f"{'pending':>8} {'missing':>8}")
    for name, base in targets.items():
        try:
            if args.drift_command == "announce":
                response = httpx.post(f"{base}/api/v1/admin/drift/announce", headers=headers, timeout=60)
            else:
                params = {"limit": args.limit, **({"since": args.since} if args.since else {})}
                response = httpx.get(f"{base}/api/v1/admin/drift", params=params, headers=headers, timeout=60)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            print(f"{name:<13} unreachable: {exc}", file=sys.stderr)
            unreachable += 1
            continue
        if response.status_code != 200:
            print(f"{name:<13} refused ({response.status_code}): {body.get('detail', body)}", file=sys.stderr)
            unreachable += 1
        elif args.drift_command == "announce":
            print(f"{name:<13} announced {body['events']} outbox rows in {body['manifests']} manifests")
        else:
            for row in body["data"]:
                print(f"{name:<13} {row['producer']:<13} {row['day']:<10} {row['announced']:>9} {row['applied']:>8} "
                      f"{row['dead_lettered']:>5} {row['pending']:>8} {row['missing']:>8}")
                for event_id in row["missing_event_ids"]:
                    print(f"{'':<13} missing {event_id}")
                if row["missing"] > len(row["missing_event_ids"]):
                    print(f"{'':<13} … and {row['missing'] - len(row['missing_event_ids'])} more")
            if not body["data"]:
                print(f"{name:<13} {'(nothing announced)' if body['producers'] else '(consumes nothing)'}")
            missing += body["missing"]
    if args.drift_command == "check":
        print(f"{missing} missing" + (f", {unreachable} service(s) not asked" if unreachable else ""))
    return 1 if missing else 2 if unreachable else 0


def cmd_backfile_import(args: argparse.Namespace) -> int:
    """Send a batch of scanned results to digitization: a ZIP, or a sheet and a folder of scans zipped on the way."""
    import tempfile
    import zipfile

    import httpx

    from motcua.registry import PORTS

    token = args.token or os.environ.get("MOTCUA_TOKEN") or local_token("backfile-cli", ["clerk"], [args.unit])
    if token is None:
        return 2  # no --token, no MOTCUA_TOKEN and no local key: said on stderr
    with tempfile.TemporaryDirectory(prefix="motcua-backfile-") as tmp:
        if args.zip:
            batch = Path(args.zip)
        else:
            if not (args.sheet and args.scans):
                print("give --zip, or --sheet and --scans", file=sys.stderr)
                return 2
            sheet, scans = Path(args.sheet), Path(args.scans)
            batch = Path(tmp) / "batch.zip"
            with zipfile.ZipFile(batch, "w", compression=zipfile.ZIP_STORED) as archive:  # scans are compressed already
                archive.write(sheet, sheet.name)
                for path in sorted(p for p in scans.rglob("*") if p.is_file() and p.resolve() != sheet.resolve()):
                    archive.write(path, path.relative_to(scans).as_posix())
        url = (args.url or f"http://127.0.0.1:{PORTS['digitization']}").rstrip("/") + "/api/v1/backfile/batches"
        with open(batch, "rb") as f:
            response = httpx.post(
                url, data={"unit": args.unit}, files={"file": (batch.name, f, "application/zip")},
                headers={"Authorization": f"Bearer {token}"}, timeout=args.timeout,
            )  # fmt: skip
    body = response.json()
    if response.status_code in (200, 201):
        again = " (this ZIP was filed before)" if response.status_code == 200 else ""
        print(f"batch {body['id']}: {body['documents']} results, {body['pages']} pages sealed and filed{again}")
        return 0
    print(f"{response.status_code} {body.get('title')}: {body.get('detail')}", file=sys.stderr)
    for problem in body.get("problems", []):
        line = f" line {problem['line']}" if problem.get("line") else ""
        print(f"  {problem.get('file') or body.get('sheet')}{line}: {problem['reason']}", file=sys.stderr)
    return 1


def cmd_register_import(args: argparse.Namespace) -> int:
    """Send a unit's paper register (CSV in UTF-8, or XLSX) to intake: a dry run unless ``--commit``; bad lines listed."""
    import httpx

    from motcua.registry import PORTS

    token = args.token or os.environ.get("MOTCUA_TOKEN") or local_token("register-cli", ["clerk"], [args.unit])
    if token is None:
        return 2  # no --token, no MOTCUA_TOKEN and no local key: said on stderr
    path = Path(args.file)
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if path.suffix.lower() == ".xlsx" else "text/csv"
    url = (args.url or f"http://127.0.0.1:{PORTS['intake']}").rstrip("/") + "/api/v1/registers/imports"
    with path.open("rb") as f:
        response = httpx.post(
            url, params={"unit": args.unit, "dry_run": str(not args.commit).lower()}, files={"file": (path.name, f, kind)},
            headers={"Authorization": f"Bearer {token}"}, timeout=args.timeout,
        )  # fmt: skip
    body = response.json()
    errors = body.get("errors") or []
    for error in errors[: args.show]:
        column = f" [{error['column']}]" if error.get("column") else ""
        print(f"  line {error['line']}{column}: {error['reason']}", file=sys.stderr)
    if len(errors) > args.show:
        print(f"  … and {len(errors) - args.show} more lines", file=sys.stderr)
    if response.status_code not in (200, 201):
        print(f"{response.status_code} {body.get('title')}: {body.get('detail')}", file=sys.stderr)
        return 1
    what = "would add" if body["dry_run"] else "added"
    kept = f" (import {body['import_id']})" if body.get("import_id") else ""
    print(f"{body['lines']} lines: {body['valid']} good, {len(errors)} bad; {what} {body['added']} dossiers, "
          f"{body['skipped']} already imported{kept}; {json.dumps(body['counts'], ensure_ascii=False)}")  # fmt: skip
    return 1 if errors else 0


def openapi_document(name: str) -> str:
    """A service's OpenAPI document as published in docs/openapi: built with ``ENVIRONMENT=test``, indented JSON."""
    with _environment(ENVIRONMENT="test"):
        document = service(name).create_app().openapi()
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


@contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put back what was there."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cmd_openapi(args: argparse.Namespace) -> int:
    """Write each service's OpenAPI document to ``<out>/<service>.json``."""
    unknown = [name for name in args.services if name not in SERVICES]
    if unknown:
        print(f"no service {', '.join(unknown)}: the services are {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.services or SERVICES:
        path = out / f"{name}.json"
        path.write_text(openapi_document(name), encoding="utf-8")
        print(path)
    return 0


def cmd_events_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of every event type."""
    from shared.events import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def local_ports() -> dict[str, int]:
    """Each service's port for ``motcua run``: the usual one, or ``<SERVICE>_PORT`` from the environment."""
    from motcua.registry import PORTS

    return {name: int(os.environ.get(f"{name.upper()}_PORT", PORTS[name])) for name in SERVICES}


def public_addresses(ports: dict[str, int], environment: Mapping[str, str]) -> dict[str, str]:
    """The public addresses the services print on forms and in messages, matching the ports they listen on.

    Only what the environment does not set itself: ``<SERVICE>_PUBLIC_BASE_URL`` of each service that has one, and
    payments' link to intake's status page of a dossier (printed on fee receipts, linked from the payment page).
    """
    from services.intake.printing import STATUS_PAGE

    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    wanted = {
        f"{name.upper()}_PUBLIC_BASE_URL": urls[name]
        for name in SERVICES
        if "public_base_url" in settings_class(name).model_fields
    }
    wanted["PAYMENTS_DOSSIER_LOOKUP_URL"] = urls["intake"] + STATUS_PAGE
    return {key: value for key, value in wanted.items() if key not in environment}


def cmd_run(args: argparse.Namespace) -> int:
    """Start the mail and SMS sink, Postgres, the broker and all five services; stop everything on Ctrl-C."""
    import asyncio

    from motcua import demo
    from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
    from motcua.localstack import Stack
    from motcua.sink import MessageSink

    started = time.monotonic()
    root = home()
    (root / "pgdata").mkdir(parents=True, exist_ok=True)
    ports = local_ports()
    sink = MessageSink(root / "messages", smtp_port=args.smtp_port, sms_port=args.sms_port)
    ours, theirs = demo.chosen(demo.groups(smtp_port=args.smtp_port, sms_url=sink.sms_url), os.environ)
    env = {**public_addresses(ports, os.environ), **demo.environment_of(ours)}
    pg = EmbeddedPostgres(root / "pgdata", port=args.pg_port)
    broker = EmbeddedBroker(port=args.kafka_port, log_path=root / "logs" / "broker.log")
    stack: Stack | None = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if any(g.label in ("mail sink", "SMS sink") for g in ours):
            sink.start()
            print(f"sink      smtp 127.0.0.1:{args.smtp_port}, sms {sink.sms_url}  messages in {root / 'messages'}", flush=True)
        pg.start()
        print(f"postgres  127.0.0.1:{args.pg_port}  data in {root / 'pgdata'}", flush=True)
        broker.start()
        print(f"broker    {broker.bootstrap_servers}  (Tansu, in memory)", flush=True)
        stack = Stack(pg, broker, root, ports=ports, env=env)
        asyncio.run(stack.start(timeout=args.timeout))
        asyncio.run(_declare_demo_units(stack))
        print(f"\nmotcua is ready in {time.monotonic() - started:.1f}s:")
        for name in SERVICES:
            print(f"  {name:<13} {stack.url(name)}/docs")
        print(f"logs in {root / 'logs'}")
        print("a clerk's token:  .venv/bin/motcua token --role clerk --unit 000.00.12.H56")
        print(demo.banner(ours, theirs, payments_url=stack.url("payments"), messages_folder=str(root / "messages")))
        print("Ctrl-C stops everything.", flush=True)
        while all(p.exited() is None for p in stack.services.values()):
            time.sleep(0.5)
        dead = [s for s, p in stack.services.items() if p.exited() is not None]
        print(f"{', '.join(dead)} exited (see {root / 'logs'}); stopping the stack", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nstopping…", flush=True)
        if stack is not None:
            stack.stop()
        broker.stop()
        pg.stop()
        sink.stop()
        print("stopped.", flush=True)


def cmd_messages(args: argparse.Namespace) -> int:
    """Print the e-mails and SMS the local stack's sink kept, decoded, oldest first."""
    from motcua.sink import format_message, read_messages
    from shared.clock import VN_TZ

    folder = home() / "messages"
    messages = list(read_messages(folder))
    if args.last:
        messages = messages[-args.last :]
    if not messages:
        print(f"no messages in {folder} (motcua run keeps there what the services send)")
        return 0
    print("\n\n".join(format_message(m, tz=VN_TZ) for m in messages))
    print(f"\n{len(messages)} message(s) in {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``motcua`` command."""
    parser = argparse.ArgumentParser(prog="motcua", description="motcua: the one-stop-shop backend")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the whole local stack (embedded Postgres and broker)")
    run.add_argument("--pg-port", type=int, default=int(os.environ.get("MOTCUA_PG_PORT", "55432")))
    run.add_argument("--kafka-port", type=int, default=int(os.environ.get("MOTCUA_KAFKA_PORT", "9092")))
    run.add_argument("--smtp-port", type=int, default=int(os.environ.get("MOTCUA_SMTP_PORT", "8025")),
                     help="the mail sink's SMTP port")
    run.add_argument("--sms-port", type=int, default=int(os.environ.get("MOTCUA_SMS_PORT", "8026")),
                     help="the SMS sink's HTTP port")
    run.add_argument("--timeout", type=float, default=60)
    run.set_defaults(func=cmd_run)

    messages = sub.add_parser("messages", help="list the e-mails and SMS the local stack's sink kept, decoded")
    messages.add_argument("--last", type=int, help="only the last N")
    messages.set_defaults(func=cmd_messages)

    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)}; all when none")
    migrate.add_argument("--wait", action="store_true",
                         help="migrate nothing: wait until each database is at the code's head revision (init containers)")
    migrate.add_argument("--timeout", type=float, default=600, help="with --wait: give up (exit 1) after this many seconds")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a bearer token signed with the local key")
    token.add_argument("--role", action="append", required=True, help="clerk, specialist, leader, admin, auditor, …")
    token.add_argument("--unit", action="append", help="unit code; repeat for several; '*' for all")
    token.add_argument("--sub", help="subject (user id)")
    token.add_argument("--name", help="display name")
    token.add_argument("--hours", type=float, default=8)
    token.set_defaults(func=cmd_token)

    clock = sub.add_parser("clock", help="move time forward in the running local stack (never in production)")
    clock_sub = clock.add_subparsers(dest="clock_command", required=True)
    clock_set = clock_sub.add_parser("set", help="jump every service to an instant (ISO 8601 with offset)")
    clock_set.add_argument("instant", help="e.g. 2026-12-01T09:00:00+07:00")
    clock_set.set_defaults(func=cmd_clock)
    clock_show = clock_sub.add_parser("show", help="print every service's current time")
    clock_show.set_defaults(func=cmd_clock)

    events = sub.add_parser("events", help="event catalog tools")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    schema = events_sub.add_parser("schema", help="write the JSON Schema of every event type")
    schema.add_argument("--out", default="docs/events")
    schema.set_defaults(func=cmd_events_schema)

    openapi = sub.add_parser("openapi", help="write each service's OpenAPI document (as published in docs/openapi)")
    openapi.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)}; all when none")
    openapi.add_argument("--out", default="docs/openapi")
    openapi.set_defaults(func=cmd_openapi)

    drift = sub.add_parser("drift", help="what each consumer applied of what each producer's outbox announced")
    drift_sub = drift.add_subparsers(dest="drift_command", required=True)
    for command, what in (("check", "print the drift of every service; exit 1 when events are missing"),
                          ("announce", "make every service announce its recent outbox again now")):
        drift_cmd = drift_sub.add_parser(command, help=what)
        drift_cmd.add_argument("--service", action="append", help="only this service (repeat for several)")
        drift_cmd.add_argument("--url", action="append", help="NAME=URL: where a service answers (default: the local stack)")
        if command == "check":
            drift_cmd.add_argument("--since", help="first day, YYYY-MM-DD (default: DRIFT_KEEP_DAYS ago)")
            drift_cmd.add_argument("--limit", type=int, default=100, help="missing ids listed per producer and day")
        drift_cmd.set_defaults(func=cmd_drift)

    outbox = sub.add_parser("outbox", help="a service's outbox")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    outbox_replay = outbox_sub.add_parser(
        "replay", help="publish again the rows sent since an instant (after a broker lost data; consumers skip duplicates)"
    )
    outbox_replay.add_argument("--service", required=True, choices=SERVICES)
    outbox_replay.add_argument("--since", required=True, help="ISO 8601 with a UTC offset, e.g. 2026-12-01T09:00:00+07:00")
    outbox_replay.set_defaults(func=cmd_outbox_replay)

    backfile = sub.add_parser("backfile", help="back-digitization of results still in force")
    backfile_sub = backfile.add_subparsers(dest="backfile_command", required=True)
    backfile_import = backfile_sub.add_parser(
        "import", help="file a batch of scans and its metadata sheet (all or nothing); problems are listed by file and line"
    )
    backfile_import.add_argument("--unit", required=True, help="the unit whose results these are")
    backfile_import.add_argument("--zip", help="a ZIP holding the sheet and the scans")
    backfile_import.add_argument("--sheet", help="the metadata sheet (.csv in UTF-8, or .xlsx)")
    backfile_import.add_argument("--scans", help="the folder of scans the sheet names (paths relative to it)")
    backfile_import.add_argument("--url", help="digitization's address (default: the local stack's)")
    backfile_import.add_argument("--token", help="a bearer token (default: MOTCUA_TOKEN, or a clerk's from the local key)")
    backfile_import.add_argument("--timeout", type=float, default=600)
    backfile_import.set_defaults(func=cmd_backfile_import)

    register = sub.add_parser("register", help="bring a unit's paper register (Sổ theo dõi hồ sơ) into the system")
    register_sub = register.add_subparsers(dest="register_command", required=True)
    register_import = register_sub.add_parser(
        "import", help="check a register (CSV in UTF-8, or XLSX) and list its bad lines; with --commit, import it (all or nothing)"
    )
    register_import.add_argument("file", help="the register file (.csv or .xlsx)")
    register_import.add_argument("--unit", required=True, help="the unit whose register it is")
    register_import.add_argument("--commit", action="store_true", help="import it (default: a dry run that changes nothing)")
    register_import.add_argument("--url", help="intake's address (default: the local stack's)")
    register_import.add_argument("--token", help="a bearer token (default: MOTCUA_TOKEN, or a clerk's from the local key)")
    register_import.add_argument("--show", type=int, default=50, help="bad lines to print (default 50)")
    register_import.add_argument("--timeout", type=float, default=600)
    register_import.set_defaults(func=cmd_register_import)

    reporting = sub.add_parser("reporting", help="reporting maintenance")
    reporting_sub = reporting.add_subparsers(dest="reporting_command", required=True)
    rebuild = reporting_sub.add_parser("rebuild", help="truncate the projections and replay reporting's event log in order")
    rebuild.set_defaults(func=cmd_reporting_rebuild)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
