"""Intake's printed forms: 01 (receipt and appointment), 02 (what to complete) and 03 (refusal)."""

from __future__ import annotations

from datetime import datetime

from services.intake import store
from services.intake.settings import IntakeSettings
from shared import forms

_KINDS = {"original": forms.DocumentKind.ORIGINAL, "copy": forms.DocumentKind.COPY,
          "certified_copy": forms.DocumentKind.CERTIFIED_COPY, "electronic": forms.DocumentKind.COPY}  # fmt: skip
_RETURN = {"counter": forms.ReturnMethod.IN_PERSON, "postal": forms.ReturnMethod.POSTAL, "online": forms.ReturnMethod.ONLINE}


def lookup_url(settings: IntakeSettings, code: str) -> str:
    """The public status page of a dossier (what the QR code opens)."""
    return f"{settings.public_base_url.rstrip('/')}/api/v1/public/dossiers/{code}"


def _agency(settings: IntakeSettings, unit: str) -> forms.Agency:
    return forms.Agency(name=settings.unit_names.get(unit, f"Bộ phận Một cửa {unit}"))


def receipt(d: store.Dossier, settings: IntakeSettings) -> bytes:
    """Form 01 of an accepted dossier."""
    return forms.render_receipt(
        forms.ReceiptForm(
            agency=_agency(settings, d.receiving_unit),
            dossier_code=d.code,
            lookup_url=lookup_url(settings, d.code),
            applicant=forms.Applicant(
                name=d.applicant_name,
                id_number=d.applicant_id_number or "",
                address=d.applicant_address or "",
                phone=d.applicant_phone or "",
                email=d.applicant_email or "",
            ),
            procedure=forms.Procedure(name=d.procedure_name, code=d.procedure_code),
            documents=tuple(
                forms.ReceivedDocument(name=c["name"], kind=_KINDS[c.get("form", "original")], count=c.get("count", 1))
                for c in d.components
            ),
            sets=d.sets,
            received_at=d.received_at,
            appointment_at=d.appointment_at,
            return_method=_RETURN[d.return_channel],
            officer=forms.Officer(name=d.received_by),
        )
    )


def not_accepted(r: store.IntakeRecord, settings: IntakeSettings) -> bytes | None:
    """Form 02 for an incomplete dossier, Form 03 for a refused one; out-of-scope guidance has no form."""
    common = dict(
        agency=_agency(settings, r.unit),
        dossier_code=r.reference,
        lookup_url=f"{settings.public_base_url.rstrip('/')}/api/v1/intake-records/{r.reference}",
        applicant=forms.Applicant(name=r.applicant_name),
        procedure=forms.Procedure(name=r.procedure_name or "", code=r.procedure_code or ""),
        officer=forms.Officer(name=r.created_by),
    )
    issued: datetime = r.created_at
    if r.outcome == "incomplete":
        items = tuple(forms.SupplementItem(content=m, reason="Thành phần hồ sơ còn thiếu") for m in r.details["missing"])
        return forms.render_supplement_request(
            forms.SupplementRequestForm(**common, stage=forms.SupplementStage.INTAKE, items=items, issued_at=issued)
        )
    if r.outcome == "refused":
        return forms.render_refusal(forms.RefusalForm(**common, reason=r.details["reason"], issued_at=issued))
    return None
