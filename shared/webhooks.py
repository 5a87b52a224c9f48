"""Signed callbacks from outside systems (the portal, the bank): HMAC-SHA256 over timestamp and body,
refused when forged, stale or replayed. Each service that takes callbacks keeps a ``webhook_replays``
table (``shared.migrate.create_replay_table()`` in its migration; the migration helper lives there so that a
running service never imports Alembic)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.errors import Problem


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``<timestamp>.<body>``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Constant-time comparison of the expected and the given signature (``sha256=`` prefix optional)."""
    # As bytes: compare_digest refuses str with non-ASCII characters, which a forged header may carry.
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), given.removeprefix("sha256=").encode())


async def check_signed_request(
    session: AsyncSession,
    *,
    secret: str | None,
    timestamp: str | None,
    given: str | None,
    body: bytes,
    now: datetime,
    max_age_seconds: int,
    who: str,
) -> None:
    """Refuse (401/409/503 problems) unless the request is signed with the secret, fresh, and not seen before.

    The signature is remembered in the caller's transaction: if the request then fails, it is forgotten with it.
    """
    if not secret:
        raise Problem(503, "webhook-disabled", f"{who} callbacks not configured", "No shared secret is set for this sender.")
    if not timestamp or not given:
        raise Problem(401, "webhook-unsigned", "Unsigned request", "A timestamp header and a signature header are required.")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Problem(401, "webhook-unsigned", "Unsigned request", "The timestamp header must be Unix seconds.") from None
    if not signature_valid(secret, timestamp, body, given):
        raise Problem(401, "webhook-forged", "Signature does not match", "The HMAC-SHA256 of '<timestamp>.<body>' differs.")
    age = now.timestamp() - sent
    if abs(age) > max_age_seconds:
        raise Problem(401, "webhook-stale", "Request too old", f"Signed {age:.0f}s ago; the window is {max_age_seconds}s.")
    await session.execute(
        sa.text("DELETE FROM webhook_replays WHERE received_at < :before"),
        {"before": now - timedelta(seconds=2 * max_age_seconds)},
    )
    fresh = await session.execute(
        sa.text("INSERT INTO webhook_replays (signature, received_at) VALUES (:s, :at) ON CONFLICT DO NOTHING"),
        {"s": given.removeprefix("sha256="), "at": now},
    )
    if fresh.rowcount != 1:
        raise Problem(409, "webhook-replayed", "Request replayed", "This exact signed request was already received.")
