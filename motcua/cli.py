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


def database_name(name: str, suffix: str = "") -> str:
    """One database per service."""
    return f"motcua_{name}{suffix}"


def cmd_serve(args: argparse.Namespace) -> int:
    """Run one service with uvicorn."""
    import uvicorn

    settings = settings_class(args.service)()
    app = service(args.service).create_app(settings)
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
    """Bring each service's database to the newest revision."""
    from motcua.migrate import upgrade

    for name in args.services or SERVICES:
        settings = settings_class(name)()
        upgrade(name, settings.database_url)
        print(f"{name}: migrated")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a bearer token signed with the local key."""
    from datetime import timedelta

    from shared.auth import issue_token

    key_file = Path(os.environ.get("MOTCUA_JWT_PRIVATE_KEY_FILE", home() / "jwt" / "jwt-private.pem"))
    if not key_file.exists():
        print(f"no signing key at {key_file}: run 'make run' once, or set MOTCUA_JWT_PRIVATE_KEY_FILE", file=sys.stderr)
        return 2
    token = issue_token(
        key_file.read_text(),
        subject=args.sub or f"{args.role[0]}@{(args.unit or ['*'])[0]}",
        roles=args.role,
        units=args.unit or [],
        name=args.name,
        ttl=timedelta(hours=args.hours),
    )
    print(token)
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    """Move (or show) the clock of every service of the running local stack."""
    from datetime import datetime

    import httpx

    from motcua.registry import PORTS
    from shared.auth import issue_token

    key_file = Path(os.environ.get("MOTCUA_JWT_PRIVATE_KEY_FILE", home() / "jwt" / "jwt-private.pem"))
    token = issue_token(key_file.read_text(), subject="clock-cli", roles=["admin"], units=["*"])
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


def cmd_reporting_rebuild(args: argparse.Namespace) -> int:
    """Rebuild reporting's projections from its own hash-chained event log."""
    from services.reporting.app import rebuild

    return rebuild()


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

    reporting = sub.add_parser("reporting", help="reporting maintenance")
    reporting_sub = reporting.add_subparsers(dest="reporting_command", required=True)
    rebuild = reporting_sub.add_parser("rebuild", help="truncate the projections and replay reporting's event log in order")
    rebuild.set_defaults(func=cmd_reporting_rebuild)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
