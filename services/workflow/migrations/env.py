"""Alembic environment of the workflow database."""

from shared.migrate import run_env

run_env()
