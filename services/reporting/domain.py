"""Reporting rules: the hash chain of a dossier's events. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainLink:
    """What one record of a dossier's stream commits to."""

    sequence: int
    event_id: str
    type: str
    source: str
    time: str
    data: dict[str, Any]
    prev_hash: str


def canonical_time(instant: datetime) -> str:
    """The instant as the chain hashes it: UTC, microseconds."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(link: ChainLink) -> str:
    """SHA-256 of the previous hash and the record's canonical JSON."""
    body = json.dumps(
        {
            "sequence": link.sequence,
            "event_id": link.event_id,
            "type": link.type,
            "source": link.source,
            "time": link.time,
            "data": link.data,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((link.prev_hash + body).encode()).hexdigest()


def first_break(links: Iterable[tuple[ChainLink, str]]) -> int | None:
    """The sequence of the first record whose stored hash or back-link does not hold, or None."""
    expected_prev, expected_seq = GENESIS, 1
    for link, stored in links:
        if link.sequence != expected_seq or link.prev_hash != expected_prev or link_hash(link) != stored:
            return link.sequence
        expected_prev, expected_seq = stored, expected_seq + 1
    return None
