"""The baseline: a bare FastAPI + asyncpg endpoint doing one INSERT in one transaction.

What the intake figures are read against. No auth, no ORM, no outbox, no tracing, no metrics:
``POST /items`` validates the same JSON body as intake, inserts one row and returns it.
Run by :mod:`bench.intake` as::

    BASELINE_DATABASE_URL=postgresql://... python -m uvicorn bench.baseline_app:app \
        --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel, Field

_DDL = """
CREATE TABLE IF NOT EXISTS baseline_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    procedure_code varchar(32) NOT NULL,
    applicant_name varchar(200) NOT NULL,
    channel varchar(16) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
_INSERT = (
    "INSERT INTO baseline_items (procedure_code, applicant_name, channel) VALUES ($1, $2, $3) "
    "RETURNING id, created_at"
)


class Item(BaseModel):
    """The same body intake takes."""

    procedure_code: str = Field(min_length=1, max_length=32)
    applicant_name: str = Field(min_length=1, max_length=200)
    channel: Literal["counter", "postal"] = "counter"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One asyncpg pool, as large as intake's SQLAlchemy pool can grow (10 + 10 overflow by default)."""
    size = int(os.environ.get("BASELINE_POOL_SIZE", "20"))
    pool = await asyncpg.create_pool(os.environ["BASELINE_DATABASE_URL"], min_size=size, max_size=size)
    async with pool.acquire() as conn:
        await conn.execute(_DDL)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="motcua bench baseline", lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, str]:
    """One INSERT in one transaction."""
    async with app.state.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_INSERT, item.procedure_code, item.applicant_name, item.channel)
    return {"code": str(row["id"]), "received_at": row["created_at"].isoformat()}
