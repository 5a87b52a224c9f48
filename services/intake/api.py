"""Intake routes: validate, call one handler, map the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel

from services.intake import handlers, store
from shared.auth import CurrentUser, Principal, Role, require_roles
from shared.errors import NotFound, Problem
from shared.service import DbDep

router = APIRouter(prefix="/api/v1", tags=["dossiers"])


class DossierPublic(BaseModel):
    """A received dossier as the receipt (Form 01) shows it."""

    code: str
    unit: str
    procedure_code: str
    procedure_name: str
    applicant_name: str
    channel: str
    received_at: datetime
    appointment_at: datetime | None
    received_by: str


def _public(dossier: store.Dossier) -> DossierPublic:
    return DossierPublic.model_validate(dossier, from_attributes=True)


@router.post(
    "/dossiers",
    status_code=201,
    response_model=DossierPublic,
    summary="Accept a dossier at the counter or from the post",
    responses={200: {"description": "the same Idempotency-Key was already used: the earlier dossier"}},
)
async def receive_dossier(
    request: Request,
    response: Response,
    body: handlers.ReceiveDossier,
    db: DbDep,
    user: Annotated[Principal, require_roles(Role.CLERK)],
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> DossierPublic:
    units = sorted(u for u in user.units if u != "*")
    if len(units) != 1:
        raise Problem(
            422, "unit-ambiguous", "Receiving unit unclear", "A clerk's token must name exactly one unit to receive for."
        )
    async with db.unit_of_work(actor=user.subject) as tx:
        dossier, created = await handlers.receive_dossier(
            tx,
            body,
            user=user,
            unit=units[0],
            calendar=request.app.state.calendar,
            idempotency_key=idempotency_key,
        )
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/dossiers/{dossier.code}"
    return _public(dossier)


@router.get("/dossiers/{code}", response_model=DossierPublic, summary="A received dossier")
async def get_dossier(code: str, db: DbDep, user: CurrentUser) -> DossierPublic:
    async with db.sessions() as session:
        dossier = await store.get(session=session, code=code)
    if dossier is None or not user.can_see(dossier.unit):
        raise NotFound("dossier", code)
    return _public(dossier)
