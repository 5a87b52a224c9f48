"""Alembic environment of the intake database."""

from shared.migrate import run_env

run_env()
