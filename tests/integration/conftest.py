"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from motcua.devstack import EmbeddedPostgres
from shared.db import Database
from tests.support.platform import namespace, service_database


@pytest.fixture
async def intake_db(postgres: EmbeddedPostgres) -> AsyncIterator[Database]:
    """A fresh intake database whose outbox writes to a topic namespace of its own."""
    db = await service_database(postgres, "intake", namespace())
    yield db
    await db.dispose()
