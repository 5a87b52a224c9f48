"""A real HTTP server on 127.0.0.1, run inside the test's event loop, standing in for an outside system."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from motcua.devstack import free_port


@dataclass
class Received:
    """One request the peer took."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class HttpPeer:
    """Records every POST; answers ``fail_with`` for the next ``failures`` requests, then 200."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    failures: int = 0
    fail_with: int = 503
    attempts: int = 0

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/status"

    async def _handle(self, request: Request) -> JSONResponse:
        self.attempts += 1
        body = await request.body()
        if self.failures > 0:
            self.failures -= 1
            return JSONResponse({"error": "down for maintenance"}, status_code=self.fail_with)
        self.received.append(Received(headers=dict(request.headers), body=body))
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HttpPeer]:
        """Serve until the block ends."""
        async with serve(Starlette(routes=[Route("/status", self._handle, methods=["POST"])]), self.port):
            yield self


@contextlib.asynccontextmanager
async def serve(app: Starlette, port: int) -> AsyncIterator[None]:
    """Serve ``app`` on 127.0.0.1:``port`` in this event loop, from when it listens until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task
