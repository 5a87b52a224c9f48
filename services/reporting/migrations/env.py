"""Alembic environment of the reporting database."""

from shared.migrate import run_env

run_env()
