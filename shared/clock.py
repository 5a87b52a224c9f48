"""Time as a dependency: the system clock in production, a settable clock in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock(Protocol):
    """Something that tells the current instant (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """Current instant in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The instant last set."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move forward."""
        self._now += delta

    def set(self, instant: datetime) -> None:
        """Jump to an instant."""
        self._now = instant.astimezone(UTC)


class OffsetClock:
    """The system clock moved forward by an offset (development and test stacks only)."""

    def __init__(self, base: Clock | None = None) -> None:
        self.base = base or SystemClock()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """The base clock's instant plus the offset."""
        return self.base.now() + self.offset

    def move_to(self, instant: datetime) -> timedelta:
        """Jump forward to ``instant``; time never runs backwards. Returns the new offset."""
        if instant.tzinfo is None:
            raise ValueError("the instant needs a UTC offset")
        if instant < self.now():
            raise ValueError(f"the clock only moves forward; it is already {self.now().isoformat()}")
        self.offset = instant - self.base.now()
        return self.offset


def local(instant: datetime) -> datetime:
    """The instant as shown in Vietnam."""
    return instant.astimezone(VN_TZ)
