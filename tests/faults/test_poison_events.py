"""A record nobody can read goes to dead letters, visible to ops, and its partition moves on."""

from __future__ import annotations

import json

from shared.envelope import MAX_EVENT_BYTES
from shared.events import Event
from tests.support import api
from tests.support.events import (
    dossier_code,
    dossier_received,
    envelope,
    raw_producer,
    unit_of,
)
from tests.support.stack import Stack, eventually, random_unit

CONSUMERS = ("workflow", "reporting")


def _poison(code: str) -> list[tuple[str, bytes, list[tuple[str, bytes]], str]]:
    """(what it is, body, headers, a piece of the error it must be filed under), all keyed by the dossier."""
    good = envelope(dossier_received(code))
    headers = good.kafka_headers()
    with_type = lambda t: [(k, t.encode() if k == "ce_type" else v) for k, v in headers]
    return [
        ("garbage bytes", b"\x00\xff\xfe not json at all", headers, "body or time is malformed"),
        ("no CloudEvents headers", good.kafka_value(), [("content-type", b"application/json")], "missing CloudEvents headers"),
        ("an unknown type", b"{}", with_type("vn.motcua.dossier.teleported.v1"), "unknown event type"),
        (
            "data that breaks its schema",
            json.dumps({"dossier_code": code, "unit": unit_of(code), "channel": "pigeon"}).encode(),
            headers,
            "does not match its schema",
        ),
        # A well-formed event, but far larger than any event: refused before it is parsed.
        (
            "an oversized record",
            json.dumps({**good.data, "padding": "x" * (MAX_EVENT_BYTES + 1)}).encode(),
            headers,
            "exceeds the limit",
        ),
        # Valid UTF-8 that Postgres text cannot hold: the dead letter keeps it as base64 instead of failing to file it.
        ("a NUL byte", b'{"dossier_code": "\x00"}', headers, "body or time is malformed"),
    ]


async def _dead_letter_count(stack: Stack, service: str, reason: str) -> float:
    async with stack.client(service, units=[]) as client:
        return await api.metric(client, "motcua_dead_letters_total", service=service, reason=reason)


async def test_undecodable_events_land_in_dead_letters_and_the_partition_moves_on(stack: Stack) -> None:
    code = dossier_code(random_unit())
    unit = unit_of(code)
    poison = _poison(code)
    reasons = {"undecodable": 5, "unknown_type": 1}
    before = {(s, r): await _dead_letter_count(stack, s, r) for s in CONSUMERS for r in reasons}

    good: Event = dossier_received(code)
    async with raw_producer(stack.broker.bootstrap_servers) as producer:
        for _, body, headers, _ in poison:
            await producer.send(stack.topic("intake"), key=code, value=body, headers=headers)
        await producer.send_envelope(stack.topic("intake"), envelope(good))  # same key: behind the poison

    async with stack.client("workflow", "specialist", units=[unit]) as workflow, stack.client(
        "reporting", "auditor", units=[unit]
    ) as reporting:
        assert await eventually(lambda: api.case(workflow, code))
        entries = await eventually(lambda: api.timeline(reporting, code))
        assert [e["type"] for e in entries if e["source"] == "/motcua/intake"] == [good.type]

    for service in CONSUMERS:
        async with stack.client(service, "auditor", units=["*"]) as client:
            letters = await api.dead_letters(client, code)
        assert len(letters) == len(poison), letters
        for (what, _, _, error), letter in zip(poison, letters, strict=True):
            assert error in letter["error"], f"{service} filed {what} as: {letter['error']}"
            assert letter["attempts"] == 1 and letter["topic"] == stack.topic("intake")
        assert letters[0]["payload"].startswith("base64:")  # bytes that are not text are kept, not lost
        assert letters[-1]["payload"].startswith("base64:")  # the NUL byte too
        for reason, count in reasons.items():
            assert await _dead_letter_count(stack, service, reason) == before[(service, reason)] + count


async def test_dead_letters_are_for_admins_and_auditors_only(stack: Stack) -> None:
    async with stack.client("workflow", "clerk", units=[random_unit()]) as clerk, stack.client("workflow", units=[]) as anonymous:
        assert (await clerk.get("/api/v1/dead-letters")).status_code == 403
        assert (await anonymous.get("/api/v1/dead-letters")).status_code == 401
    async with stack.client("reporting", "admin", units=["*"]) as admin:
        assert (await admin.get("/api/v1/dead-letters")).status_code == 200
