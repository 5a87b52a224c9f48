"""Migrate a service's database by name: Alembic with the service's script directory from the registry.

The platform part every service's ``migrations/env.py`` uses (``run_env``, ``create_platform_tables``)
is in ``shared.migrate``.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from motcua.registry import service as registered


def alembic_config(service: str, database_url: str) -> Config:
    """Alembic configuration of one service."""
    cfg = Config()
    cfg.set_main_option("script_location", str(registered(service).migrations_path))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Migrate one service's database (call from a thread when an event loop runs)."""
    command.upgrade(alembic_config(service, database_url), revision)
