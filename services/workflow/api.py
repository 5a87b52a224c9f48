"""Workflow routes: validate, call one handler, map the result."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from services.workflow import store
from services.workflow.domain import NATIONAL_STATUS, NATIONAL_STATUS_NAME, CaseStatus
from shared.auth import CurrentUser
from shared.errors import NotFound
from shared.service import DbDep

router = APIRouter(prefix="/api/v1", tags=["cases"])


class CasePublic(BaseModel):
    """A case and where it stands."""

    code: str
    unit: str
    procedure_code: str
    procedure_name: str
    applicant_name: str
    channel: str
    status: CaseStatus
    national_status: int
    national_status_name: str
    received_at: datetime
    due_at_original: datetime | None
    appointment_at: datetime | None


@router.get("/cases/{code}", response_model=CasePublic, summary="A case and its status")
async def get_case(code: str, db: DbDep, user: CurrentUser) -> CasePublic:
    async with db.sessions() as session:
        case = await store.get(session=session, code=code)
    if case is None or not user.can_see(case.unit):
        raise NotFound("case", code)
    national = NATIONAL_STATUS[CaseStatus(case.status)]
    return CasePublic(
        **case.model_dump(exclude={"version", "status"}),
        status=CaseStatus(case.status),
        national_status=national,
        national_status_name=NATIONAL_STATUS_NAME[national],
    )
