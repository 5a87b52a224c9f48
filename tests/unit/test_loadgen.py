"""The benchmarks' load generator counts what a real HTTP server answered, and a late answer never counts twice.

It speaks HTTP/1.1 straight to the socket (bench/loadgen.py), so these tests hold it against a real uvicorn server
on a local port: statuses, bodies, a server that closes its connections, and a request that times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from bench.loadgen import Connection, Run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _App:
    """201 with the dossier's name for every odd request, 503 for every even one; ``/slow`` answers after 1 s."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append({"path": scope["path"], "headers": dict(scope["headers"]), "body": body})
        if scope["path"] == "/slow":
            await asyncio.sleep(1.0)
        status = 201 if len(self.seen) % 2 else 503
        name = json.loads(body)["applicant_name"] if body else ""
        answer = json.dumps({"code": f"C{len(self.seen)}", "received_at": "2026-12-03", "name": name},
                            ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        if scope["path"] == "/close":
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def _serving(app: _App) -> AsyncIterator[int]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def test_an_open_loop_counts_every_status_and_sends_the_token_and_the_vietnamese_body() -> None:
    app = _App()
    async with _serving(app) as port:
        spec = {"base_url": f"http://127.0.0.1:{port}", "path": "/api/v1/dossiers", "mode": "open", "rate": 100,
                "warmup": 0, "duration": 0.5, "max_connections": 4, "collect": True, "tokens": [["u", "tok-1"]]}
        result = await Run(spec).run()
    assert result["sent"] == len(app.seen) == 50
    assert result["status"] == {"201": 25, "503": 25}
    assert result["exceptions"] == {}
    assert len(result["latencies_by_status_ms"]["201"]) == 25
    assert app.seen[0]["headers"][b"authorization"] == b"Bearer tok-1"
    assert json.loads(app.seen[0]["body"])["applicant_name"].startswith("Nguyễn Văn Bench")
    assert result["samples"], "the accepted answers' codes were read"


async def test_a_server_that_closes_the_connection_is_reconnected() -> None:
    app = _App()
    async with _serving(app) as port:
        connection = Connection("127.0.0.1", port, timeout=5)
        request = b"POST /close HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
        answers = [await connection.post(request) for _ in range(3)]
        connection.close()
    assert [a.status_code for a in answers] == [201, 503, 201]
    assert [a.json()["code"] for a in answers] == ["C1", "C2", "C3"]


async def test_a_late_answer_is_a_timeout_and_never_the_next_requests_answer() -> None:
    app = _App()
    async with _serving(app) as port:
        connection = Connection("127.0.0.1", port, timeout=0.2)
        with pytest.raises(TimeoutError):
            await connection.post(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        connection.timeout = 5
        answer = await connection.post(b"POST /fast HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        connection.close()
        await asyncio.sleep(1.0)  # the slow request finishes on its closed connection
    assert answer.json()["code"] == "C2"
