"""Per-client token buckets for the endpoints that take no bearer token.

The citizen's lookups and the signed callbacks of the portal and the bank are reachable by anyone
who knows the URL; a token bucket per client address keeps one caller from flooding the database
behind them. Buckets live in the process (each replica counts on its own, so a deployment of N
replicas admits up to N times the rate), are kept for at most ``MAX_CLIENTS`` addresses (least
recently seen forgotten first) and refill continuously: ``rate`` tokens a second, at most ``burst``.
A refused request gets a 429 problem with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Depends, Request

from shared.errors import Problem

MAX_CLIENTS = 10_000


class Policy(StrEnum):
    """Which budget an endpoint draws from."""

    PUBLIC = "public"  # citizens' lookups, rating and feedback: no token, no signature
    CALLBACK = "callback"  # the portal's and the bank's signed callbacks: a machine, at volume


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket per key; ``take`` answers how long to wait (0 when the request may go ahead)."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_CLIENTS) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """A rate of 0 (or less) switches the limit off."""
        return self.rate > 0 and self.burst > 0

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when there was one, else the seconds until there is."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket  # most recently seen last
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (uvicorn puts the X-Forwarded-For of trusted proxies here)."""
    return request.client.host if request.client else "unknown"


def too_many_requests(wait: float) -> Problem:
    """The 429 problem; ``Retry-After`` (whole seconds, at least 1) is set from ``retry_after_seconds``."""
    seconds = max(1, math.ceil(wait))
    return Problem(
        429, "rate-limited", "Too many requests",
        f"This address sent more requests than allowed; retry in {seconds} s.", retry_after_seconds=seconds,
    )  # fmt: skip


def rate_limited(policy: Policy):  # noqa: ANN201 - a FastAPI dependency
    """Dependency: refuse the request with a 429 problem when the caller's bucket of ``policy`` is empty.

    The app keeps its buckets in ``app.state.rate_limits`` (``build_app`` sets them from the settings).
    """

    async def _dependency(request: Request) -> None:
        buckets: dict[Policy, TokenBuckets] | None = getattr(request.app.state, "rate_limits", None)
        if not buckets:
            return
        wait = buckets[policy].take(client_address(request))
        if wait > 0:
            raise too_many_requests(wait)

    return Depends(_dependency)


def buckets_from(
    *, public_per_second: float, public_burst: int, callback_per_second: float, callback_burst: int
) -> dict[Policy, TokenBuckets]:
    """The buckets of one app, from its settings."""
    return {
        Policy.PUBLIC: TokenBuckets(public_per_second, public_burst),
        Policy.CALLBACK: TokenBuckets(callback_per_second, callback_burst),
    }
