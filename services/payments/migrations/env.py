"""Alembic environment of the payments database."""

from shared.migrate import run_env

run_env()
