"""CloudEvents 1.0 in Kafka binary mode: attributes in ``ce_*`` headers, the event as a JSON body."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.events import Fact, event_class

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json; charset=utf-8"
# Events are small facts (no file contents): a record far beyond any of them is refused before it is parsed.
MAX_EVENT_BYTES = 512 * 1024


class DecodeError(Exception):
    """The record is not a CloudEvent this system can read (permanent)."""


class UnknownEventType(DecodeError):
    """The record's type is not in the event catalog (permanent)."""


@dataclass(frozen=True)
class Envelope:
    """One CloudEvent as it travels through Kafka."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any]
    traceparent: str | None = None
    actor: str | None = None

    @classmethod
    def wrap(cls, event: Fact, *, source: str, time: datetime, traceparent: str | None, actor: str | None) -> Envelope:
        """A new envelope (fresh id) around an event."""
        return cls(
            id=str(uuid.uuid4()),
            type=event.type,
            source=source,
            subject=event.subject,
            time=time,
            data=event.model_dump(mode="json"),
            traceparent=traceparent,
            actor=actor,
        )

    def event(self) -> Fact:
        """The typed event inside; raises DecodeError when it does not fit its schema."""
        model = event_class(self.type)
        if model is None:
            raise UnknownEventType(f"unknown event type {self.type!r}")
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise DecodeError(f"{self.type} does not match its schema: {exc.error_count()} error(s): {exc}") from exc

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Binary-mode headers."""
        headers = {
            "ce_specversion": SPECVERSION,
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_subject": self.subject,
            "ce_time": self.time.isoformat(),
            "content-type": CONTENT_TYPE,
        }
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        if self.actor:
            headers["ce_actor"] = self.actor
        return [(k, v.encode()) for k, v in headers.items()]

    def kafka_value(self) -> bytes:
        """The JSON body."""
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: list[tuple[str, bytes]] | tuple | None) -> Envelope:
        """Read a record; raises DecodeError on anything malformed (or larger than ``MAX_EVENT_BYTES``)."""
        if value is not None and len(value) > MAX_EVENT_BYTES:
            raise DecodeError(f"body of {len(value)} bytes exceeds the limit of {MAX_EVENT_BYTES} bytes")
        try:
            attrs = {k: v.decode() for k, v in (headers or ())}
        except (UnicodeDecodeError, AttributeError, ValueError) as exc:
            raise DecodeError(f"headers are not UTF-8: {exc}") from exc
        missing = [k for k in ("ce_id", "ce_type", "ce_source", "ce_subject", "ce_time") if not attrs.get(k)]
        if missing:
            raise DecodeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if attrs.get("ce_specversion", SPECVERSION) != SPECVERSION:
            raise DecodeError(f"unsupported specversion {attrs['ce_specversion']!r}")
        try:
            data = json.loads(value or b"")
            time = datetime.fromisoformat(attrs["ce_time"])
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"body or time is malformed: {exc}") from exc
        if not isinstance(data, dict):
            raise DecodeError("body is not a JSON object")
        if time.tzinfo is None:
            raise DecodeError("ce_time has no offset")
        return cls(
            id=attrs["ce_id"],
            type=attrs["ce_type"],
            source=attrs["ce_source"],
            subject=attrs["ce_subject"],
            time=time,
            data=data,
            traceparent=attrs.get("traceparent"),
            actor=attrs.get("ce_actor"),
        )
