"""Token buckets per client address: a burst, then the refill rate, each address on its own."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from shared.errors import install_problem_handlers
from shared.ratelimit import Policy, TokenBuckets, buckets_from, rate_limited


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_the_rate_refills_it() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every 1/rate seconds
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 60  # a long pause refills to the burst, never beyond
    assert [buckets.take("a") for _ in range(4)].count(0.0) == 3


def test_each_address_has_its_own_bucket() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=FakeClock())
    assert buckets.take("198.51.100.1") == 0.0
    assert buckets.take("198.51.100.1") > 0
    assert buckets.take("198.51.100.2") == 0.0


def test_a_rate_of_zero_switches_the_limit_off() -> None:
    buckets = TokenBuckets(rate=0, burst=1, clock=FakeClock())
    assert not buckets.enabled
    assert all(buckets.take("a") == 0.0 for _ in range(1000))


def test_the_number_of_remembered_addresses_is_bounded() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock, max_keys=100)
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}")
    assert len(buckets) == 100


def app_with_limit(public_burst: int) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.rate_limits = buckets_from(
        public_per_second=0.001, public_burst=public_burst, callback_per_second=0, callback_burst=0
    )

    @app.get("/public", dependencies=[rate_limited(Policy.PUBLIC)])
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/callback", dependencies=[rate_limited(Policy.CALLBACK)])
    async def callback() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_a_refused_request_gets_a_429_problem_with_retry_after() -> None:
    client = TestClient(app_with_limit(public_burst=2))
    assert [client.get("/public").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/public")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    body = refused.json()
    assert body["type"] == "urn:motcua:problem:rate-limited" and body["status"] == 429 and body["detail"]
    assert body["retry_after_seconds"] == int(refused.headers["retry-after"])
    # another policy draws from its own bucket; a switched-off policy never refuses
    assert all(client.post("/callback").status_code == 200 for _ in range(20))
