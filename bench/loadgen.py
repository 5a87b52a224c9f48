"""The load generator, run as its own process so its CPU is measurable apart from the orchestrator's.

Reads one JSON spec on stdin, writes one JSON result on stdout (``python -m bench.loadgen``).
HTTP/1.1 over keep-alive connections on uvloop, written straight to the socket with httptools parsing the answer.
It was httpx: against an empty ASGI app at 400 requests/s that cost 0.61 ms of CPU per request and answered p50
0.73 s, p99 8.8 s late, all of it the generator's own queue, which the overload bench then counted as the server's
latency; this costs 0.25 ms and sees p50 1 ms, p99 26 ms (same app, same minute). Two modes:

* ``open``: requests are launched at a fixed offered rate whatever the server does (open loop);
  latency is counted from the *intended* send time, so a slow server cannot hide its queue
  (no coordinated omission). Generator-side lateness (actual - intended start) is reported too.
* ``closed``: ``concurrency`` workers each send the next request as soon as the previous one
  answered (maximum throughput).

Each run is ``warmup`` seconds (not counted) followed by ``duration`` measured seconds. A
request belongs to the measurement when its intended start falls in the window (latency and
status counts); throughput counts 201s *completed* in the window.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httptools

ALLOWED_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Response:
    """What a request got back: the status and the body."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)


class _Wire(asyncio.Protocol):
    """One TCP connection: feeds what arrives to httptools (llhttp) and hands each complete answer to its waiter."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.body: list[bytes] = []

    def fail(self, exc: BaseException) -> None:
        if self.transport is not None:
            self.transport.close()  # a late answer must never be read as the next request's
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(exc or ConnectionResetError("the server closed the connection"))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Response(self.parser.get_status_code(), b"".join(self.body)))
        self.body = []
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.transport.close()


class Connection:
    """A keep-alive HTTP/1.1 connection to one server, one request at a time, reopened when it was closed."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.wire: _Wire | None = None

    async def post(self, request: bytes) -> Response:
        loop = asyncio.get_running_loop()
        if self.wire is None or self.wire.transport is None or self.wire.transport.is_closing():
            _transport, self.wire = await loop.create_connection(_Wire, self.host, self.port)
        wire = self.wire
        wire.waiter = loop.create_future()
        assert wire.transport is not None
        wire.transport.write(request)
        timer = loop.call_later(self.timeout, wire.fail, TimeoutError(f"no answer within {self.timeout:g} s"))
        try:
            return await wire.waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        if self.wire is not None and self.wire.transport is not None:
            self.wire.transport.close()


class Run:
    """One generator run: its spec, its clock and what it recorded."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.path: str = spec["path"]
        self.mode: str = spec["mode"]
        self.warmup = float(spec["warmup"])
        self.duration = float(spec["duration"])
        self.timeout = float(spec.get("timeout", 10))
        self.collect = bool(spec.get("collect", False))
        self.sample_interval = self.duration / max(1, int(spec.get("samples", 200)))
        self.name_prefix: str = spec.get("name_prefix", "Nguyễn Văn Bench")
        self.procedure_code: str = spec.get("procedure_code", "1.004194")
        units = spec.get("tokens") or [[None, None]]
        base = urlsplit(spec["base_url"])
        if base.scheme != "http":
            raise ValueError("the generator speaks plain HTTP to 127.0.0.1 only")
        self.host, self.port = base.hostname or "127.0.0.1", base.port or 80
        self.heads = [
            (f"POST {self.path} HTTP/1.1\r\nhost: {base.netloc}\r\ncontent-type: application/json\r\n"
             + (f"authorization: Bearer {tok}\r\n" if tok else "")).encode()
            for _unit, tok in units
        ]
        self.status: Counter[str] = Counter()
        self.exceptions: Counter[str] = Counter()
        self.latencies_ms: list[float] = []  # from intended start (open) / actual start (closed)
        self.latencies_by_status_ms: dict[str, list[float]] = {}  # the same, per HTTP status (201 vs 503)
        self.service_ms: list[float] = []  # from actual send start
        self.lateness_ms: list[float] = []  # actual send - intended start (open loop: the generator's queue)
        self.sent = self.sent_in_window = 0
        self.accepted_total = self.accepted_in_window = 0
        self.dropped = 0  # open loop: not launched because max_in_flight was reached
        self.in_flight = self.peak_in_flight = 0
        self.samples: dict[int, list[str]] = {}
        self.last_accepted: bytes | None = None
        self.cpu_window: list[float] = []
        self.t0 = self.ms = self.me = 0.0
        self.late_start = 0.0
        self.clients: asyncio.Queue[Connection] = asyncio.Queue()
        self.seq = 0

    def _body(self) -> bytes:
        self.seq += 1
        return json.dumps(
            {"procedure_code": self.procedure_code, "applicant_name": f"{self.name_prefix} {self.seq}", "channel": "counter"},
            ensure_ascii=False,
        ).encode()

    async def one(self, index: int, intended: float) -> None:
        loop = asyncio.get_running_loop()
        body = self._body()
        request = self.heads[index % len(self.heads)] + b"content-length: %d\r\n\r\n" % len(body) + body
        measured = self.ms <= intended < self.me
        try:  # the caller counted this request in self.in_flight
            client = await self.clients.get()  # a free keep-alive connection (waiting here is lateness)
            try:
                started = loop.time()
                self.sent += 1
                self.sent_in_window += measured
                response = await client.post(request)
            finally:
                self.clients.put_nowait(client)
        except Exception as exc:  # noqa: BLE001 - every failure is a figure (timeouts, resets, ...)
            if measured:
                self.exceptions[type(exc).__name__] += 1
            return
        finally:
            self.in_flight -= 1
        done = loop.time()
        code = response.status_code
        if measured:
            self.status[str(code)] += 1
            self.latencies_ms.append(round((done - intended) * 1000, 3))
            self.latencies_by_status_ms.setdefault(str(code), []).append(self.latencies_ms[-1])
            self.service_ms.append(round((done - started) * 1000, 3))
            if self.mode == "open":
                self.lateness_ms.append(round((started - intended) * 1000, 3))
        if code == 201:
            self.accepted_total += 1
            if self.ms <= done < self.me:
                self.accepted_in_window += 1
                if self.collect:
                    self.last_accepted = response.content
                    slot = int((done - self.ms) / self.sample_interval)
                    if slot not in self.samples:
                        body_json = response.json()
                        self.samples[slot] = [body_json["code"], body_json["received_at"]]

    async def _cpu_marks(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self.ms - loop.time()))
        self.cpu_window.append(_cpu_seconds())
        await asyncio.sleep(max(0.0, self.me - loop.time()))
        self.cpu_window.append(_cpu_seconds())

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        connections = int(self.spec.get("max_connections", 128))
        clients = [Connection(self.host, self.port, self.timeout) for _ in range(connections)]
        for client in clients:
            self.clients.put_nowait(client)
        delay = float(self.spec.get("start_at", 0)) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self.late_start = max(0.0, -delay)  # > 0: the orchestrator's CPU window and ours are misaligned by it
        self.t0 = loop.time()
        self.ms, self.me = self.t0 + self.warmup, self.t0 + self.warmup + self.duration
        cpu_task = asyncio.create_task(self._cpu_marks())
        cpu_start = _cpu_seconds()
        try:
            if self.mode == "open":
                await self._open()
            else:
                await self._closed()
        finally:
            for client in clients:
                client.close()
        await cpu_task
        cpu_total = _cpu_seconds() - cpu_start
        if self.collect and self.last_accepted is not None:
            body_json = json.loads(self.last_accepted)
            self.samples[len(self.samples) + 10**9] = [body_json["code"], body_json["received_at"]]
        cpu_in_window = self.cpu_window[1] - self.cpu_window[0] if len(self.cpu_window) == 2 else None
        return {
            "mode": self.mode,
            "window_seconds": self.duration,
            "sent": self.sent,
            "sent_in_window": self.sent_in_window,
            "accepted_total": self.accepted_total,
            "accepted_in_window": self.accepted_in_window,
            "status": dict(self.status),
            "exceptions": dict(self.exceptions),
            "dropped": self.dropped,
            "peak_in_flight": self.peak_in_flight,
            "latencies_ms": self.latencies_ms,
            "latencies_by_status_ms": self.latencies_by_status_ms,
            "service_ms": self.service_ms,
            "lateness_ms": self.lateness_ms,
            "samples": list(self.samples.values()),
            "cpu_seconds_window": cpu_in_window,
            "cpu_seconds_total": cpu_total,
            "wall_seconds_total": loop.time() - self.t0,
            "late_start_s": round(self.late_start, 3),
        }

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        rate = float(self.spec["rate"])
        total = min(int(rate * (self.warmup + self.duration)), int(self.spec.get("max_requests", 10**6)))
        cap = int(self.spec.get("max_in_flight", 2000))
        tasks: set[asyncio.Task[None]] = set()
        index = 0
        while index < total:
            now = loop.time()
            intended = self.t0 + index / rate
            if intended > now:
                await asyncio.sleep(intended - now)
                now = loop.time()
            while index < total and self.t0 + index / rate <= now:
                intended = self.t0 + index / rate
                if self.in_flight >= cap:
                    self.dropped += self.ms <= intended < self.me
                else:
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                    task = asyncio.create_task(self.one(index, intended))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                index += 1
        if tasks:
            _done, pending = await asyncio.wait(set(tasks), timeout=min(self.timeout, 5.0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                self.exceptions["unfinished"] += len(pending)

    async def _closed(self) -> None:
        loop = asyncio.get_running_loop()
        budget = int(self.spec.get("max_requests", 10**6))

        async def worker(w: int) -> None:
            nonlocal budget
            while loop.time() < self.me and budget > 0:
                budget -= 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                await self.one(w, loop.time())

        await asyncio.gather(*(worker(w) for w in range(int(self.spec["concurrency"]))))


def main() -> int:
    """Read the spec, run, print the result."""
    spec = json.load(sys.stdin)
    host = urlsplit(spec["base_url"]).hostname
    if host not in ALLOWED_HOSTS:
        print(json.dumps({"error": f"refusing to load {host!r}: only 127.0.0.1 targets"}))
        return 2
    try:
        import uvloop

        result = uvloop.run(Run(spec).run())
    except ImportError:
        result = asyncio.run(Run(spec).run())
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
