"""Alembic environment of the digitization database."""

from shared.migrate import run_env

run_env()
