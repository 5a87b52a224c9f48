"""The movable clock of development stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock, OffsetClock


def test_the_offset_clock_jumps_forward_and_keeps_running() -> None:
    base = ManualClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
    clock = OffsetClock(base)
    target = datetime(2026, 1, 20, 9, 0, tzinfo=UTC)
    clock.move_to(target)
    assert clock.now() == target
    base.advance(timedelta(minutes=5))
    assert clock.now() == target + timedelta(minutes=5)


def test_the_offset_clock_never_runs_backwards() -> None:
    clock = OffsetClock(ManualClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC)))
    with pytest.raises(ValueError, match="only moves forward"):
        clock.move_to(datetime(2026, 1, 4, tzinfo=UTC))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        OffsetClock().move_to(datetime(2030, 1, 1))


async def test_a_production_service_refuses_to_move_its_clock(tmp_path) -> None:  # noqa: ANN001
    import httpx

    from services.intake.app import create_app
    from services.intake.settings import IntakeSettings
    from shared.auth import generate_keypair, issue_token

    private, public = generate_keypair(tmp_path)
    app = create_app(IntakeSettings(environment="production", jwt_public_key=public.read_text(), kafka_security_protocol="SSL"))
    token = issue_token(private.read_text(), subject="ops", roles=["admin"], units=["*"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        response = await client.put(
            "/api/v1/admin/clock", json={"now": "2099-01-01T00:00:00+07:00"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:motcua:problem:clock-fixed"
