"""Workflow settings."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class WorkflowSettings(ServiceSettings):
    """Settings of the workflow service (``WORKFLOW_*`` overrides the shared variables)."""

    service: ClassVar[str] = "workflow"
    port: int = 8002
