"""A whole motcua stack for tests: real Postgres, real broker, the services as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

import httpx

from shared.auth import generate_keypair, issue_token
from shared.cli import SERVICES
from shared.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.migrate import upgrade

T = TypeVar("T")


def random_unit() -> str:
    """A unit code no other test uses (QCVN 102 shape)."""
    return f"000.{uuid.uuid4().int % 100:02d}.{uuid.uuid4().int % 100:02d}.T{uuid.uuid4().hex[:6].upper()}"


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30, interval: float = 0.1) -> T:
    """Poll until the probe returns something truthy; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)


class ServiceProcess:
    """One service running as ``motcua serve`` in its own process."""

    def __init__(self, service: str, env: dict[str, str], log_dir: Path) -> None:
        self.service = service
        self.port = free_port()
        self.env = {**env, f"{service.upper()}_PORT": str(self.port)}
        self.log_path = log_dir / f"{service}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Spawn the process (not waiting for readiness)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", self.service],
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def exited(self) -> int | None:
        """Exit code, or None while running."""
        return None if self.process is None else self.process.poll()

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until /readyz says ready and the consumer is connected."""
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:

            async def _probe() -> bool:
                if self.exited() is not None:
                    raise AssertionError(f"{self.service} exited with {self.exited()}:\n{self.log_tail()}")
                try:
                    body = (await client.get("/readyz")).json()
                except (httpx.HTTPError, ValueError):
                    return False
                return body.get("status") == "ready" and body["checks"].get("consumer", "connected") == "connected"

            await eventually(_probe, timeout=timeout, interval=0.1)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the service's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        """The whole log."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    """Databases, topics and processes of one isolated motcua installation."""

    def __init__(self, postgres: EmbeddedPostgres, broker: EmbeddedBroker, workdir: Path, *, services: Iterable[str] = SERVICES) -> None:
        self.postgres = postgres
        self.broker = broker
        self.namespace = f"t{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.private_key_path, self.public_key_path = generate_keypair(workdir / "jwt")
        self.private_key = self.private_key_path.read_text()
        self.env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_TOPIC_NAMESPACE": self.namespace,
            "JWT_PUBLIC_KEY_FILE": str(self.public_key_path),
            "RELAY_POLL_SECONDS": "0.5",
            "CONSUMER_BACKOFF_MAX_SECONDS": "2",
        }
        self.services: dict[str, ServiceProcess] = {}
        self.names = tuple(services)
        for service in self.names:
            self.env[f"{service.upper()}_DATABASE_URL"] = self.database_url(service)

    def database(self, service: str) -> str:
        """This stack's database of a service."""
        return f"motcua_{service}_{self.namespace}"

    def database_url(self, service: str) -> str:
        """SQLAlchemy URL of a service's database."""
        return self.postgres.dsn(self.database(service)).replace("postgresql://", "postgresql+asyncpg://", 1)

    def topic(self, producer: str) -> str:
        """This stack's topic of a producing service."""
        return f"{self.namespace}.{producer}"

    def prepare(self) -> None:
        """Create and migrate every database."""
        for service in self.names:
            self.postgres.ensure_database(self.database(service))
            upgrade(service, self.database_url(service))

    async def start(self, extra_env: dict[str, dict[str, str]] | None = None) -> None:
        """Prepare, spawn every service and wait until all are ready."""
        await asyncio.to_thread(self.prepare)
        for service in self.names:
            process = ServiceProcess(service, self.env, self.workdir)
            self.services[service] = process
            process.start((extra_env or {}).get(service))
        await asyncio.gather(*(p.wait_ready() for p in self.services.values()))

    def stop(self) -> None:
        """Stop every process."""
        for process in self.services.values():
            process.stop()

    def url(self, service: str) -> str:
        """Base URL of a service."""
        return self.services[service].url

    def token(self, *roles: str, units: list[str], subject: str | None = None) -> str:
        """A token signed with this stack's key."""
        return issue_token(self.private_key, subject=subject or f"{roles[0]}-{uuid.uuid4().hex[:6]}", roles=list(roles), units=units)

    def client(self, service: str, *roles: str, units: list[str]) -> httpx.AsyncClient:
        """An HTTP client for a service, authenticated as the given roles."""
        headers = {"Authorization": f"Bearer {self.token(*roles, units=units)}"} if roles else {}
        return httpx.AsyncClient(base_url=self.url(service), headers=headers, timeout=10)
