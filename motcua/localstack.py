"""A whole motcua installation on one machine: databases, topics and the five services as real processes.

``motcua run`` uses it with the fixed local ports; the tests and the benchmarks
use it with free ports and a namespace of their own, so several stacks can share
one Postgres server and one broker without seeing each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from motcua.migrate import upgrade
from motcua.registry import PORTS, SERVICES
from shared.auth import generate_keypair, issue_token

__all__ = ["PORTS", "SERVICES", "ServiceProcess", "Stack"]


class ServiceProcess:
    """One service running as ``motcua serve`` in its own process."""

    def __init__(self, service: str, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.service = service
        self.port = port or free_port()
        self.env = {**env, f"{service.upper()}_PORT": str(self.port)}
        self.log_path = log_dir / f"{service}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Spawn the process (not waiting for readiness)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "motcua.cli", "serve", self.service],
                env={**self.env, **(extra_env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            )

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (graceful: in-flight work finishes), SIGKILL after ``timeout``."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def exited(self) -> int | None:
        """Exit code, or None while running (or never started)."""
        return None if self.process is None else self.process.poll()

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until /readyz says ready and the consumer is connected; fails early if the process dies."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                if self.exited() is not None:
                    raise RuntimeError(f"{self.service} exited with {self.exited()}:\n{self.log_tail()}")
                try:
                    body = (await client.get("/readyz")).json()
                    if body.get("status") == "ready" and body["checks"].get("consumer", "connected") == "connected":
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.service} not ready after {timeout:.0f}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def log_text(self) -> str:
        """The whole log."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])


class Stack:
    """Databases, topics and processes of one motcua installation."""

    def __init__(
        self,
        postgres: EmbeddedPostgres,
        broker: EmbeddedBroker,
        workdir: Path,
        *,
        namespace: str = "motcua",
        database_suffix: str = "",
        ports: dict[str, int] | None = None,
        services: Iterable[str] = SERVICES,
        environment: str = "development",
        env: dict[str, str] | None = None,
    ) -> None:
        self.postgres = postgres
        self.broker = broker
        self.workdir = workdir
        self.namespace = namespace
        self.database_suffix = database_suffix
        self.ports = ports or {}
        self.names = tuple(services)
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.private_key_path, self.public_key_path = generate_keypair(workdir / "jwt")
        self.env = {
            **os.environ,
            "ENVIRONMENT": environment,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_TOPIC_NAMESPACE": namespace,
            "JWT_PUBLIC_KEY_FILE": str(self.public_key_path),
            # One machine, one broker: a short session makes group joins and failover take seconds, not tens.
            "KAFKA_SESSION_TIMEOUT_MS": "3000",
            **(env or {}),
        }
        for service in self.names:
            self.env[f"{service.upper()}_DATABASE_URL"] = self.database_url(service)
        self.services = {
            s: ServiceProcess(s, self.env, workdir / "logs", port=self.ports.get(s)) for s in self.names
        }

    @classmethod
    def isolated(cls, postgres: EmbeddedPostgres, broker: EmbeddedBroker, workdir: Path, **kwargs: object) -> Stack:
        """A stack with its own namespace, databases and free ports (tests, benchmarks)."""
        namespace = f"t{uuid.uuid4().hex[:10]}"
        return cls(postgres, broker, workdir, namespace=namespace, database_suffix=f"_{namespace}", environment="test", **kwargs)  # type: ignore[arg-type]

    def database(self, service: str) -> str:
        """This stack's database of a service."""
        return f"motcua_{service}{self.database_suffix}"

    def database_url(self, service: str) -> str:
        """SQLAlchemy URL of a service's database."""
        return self.postgres.dsn(self.database(service)).replace("postgresql://", "postgresql+asyncpg://", 1)

    def topic(self, producer: str) -> str:
        """This stack's topic of a producing service."""
        return f"{self.namespace}.{producer}"

    def prepare(self) -> None:
        """Create and migrate every database (blocking: call from a thread inside an event loop)."""
        for service in self.names:
            self.postgres.ensure_database(self.database(service))
            upgrade(service, self.database_url(service))

    async def start(self, extra_env: dict[str, dict[str, str]] | None = None, timeout: float = 60) -> None:
        """Prepare, spawn every service and wait until all are ready."""
        await asyncio.to_thread(self.prepare)
        for service, process in self.services.items():
            process.start((extra_env or {}).get(service))
        await asyncio.gather(*(p.wait_ready(timeout) for p in self.services.values()))

    def stop(self) -> None:
        """Stop every process."""
        for process in self.services.values():
            if process.process and process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
        for process in self.services.values():
            process.stop()

    def url(self, service: str) -> str:
        """Base URL of a service."""
        return self.services[service].url

    def token(self, *roles: str, units: list[str], subject: str | None = None) -> str:
        """A token signed with this stack's key."""
        subject = subject or f"{roles[0]}-{uuid.uuid4().hex[:6]}"
        return issue_token(self.private_key_path.read_text(), subject=subject, roles=list(roles), units=units)

    def client(
        self, service: str, *roles: str, units: list[str], subject: str | None = None, timeout: float = 10
    ) -> httpx.AsyncClient:
        """An HTTP client for a service, authenticated as the given roles (as ``subject``, when named)."""
        headers = {"Authorization": f"Bearer {self.token(*roles, units=units, subject=subject)}"} if roles else {}
        return httpx.AsyncClient(base_url=self.url(service), headers=headers, timeout=timeout)
