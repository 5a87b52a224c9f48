"""Digitization's page for people, under ``/kiem-tra``: checking a certified electronic copy (what the QR on its
certification page opens).

The route is the public JSON check's (``GET /api/v1/public/documents/{id}/signature``) shown as a page: the same
handler, the same facts (signature, signer, time, the file's hash, the copy's number), nothing about the owner,
the paper or the dossier. Besides, the page says whether a leader of the unit revoked the copy (when and why,
``POST /api/v1/certified-copies/{id}/revocation``): a revoked copy is not valid, whatever its signature. A stored file that no longer reads as a signed PDF is shown as a copy that is not valid,
where the JSON check answers 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse

from services.digitization import domain, handlers, signing, store
from services.digitization.deps import Deps
from services.digitization.settings import DigitizationSettings
from shared.pages import PageRouter, Pages
from shared.ratelimit import Policy, rate_limited

TEMPLATES = FilePath(__file__).with_name("templates")
# Built once: the router renders its error pages with it, and ``DigitizationDeps.pages`` is this same object.
PAGES = Pages(TEMPLATES)
PREFIX = "/kiem-tra"

router = PageRouter(pages=PAGES, prefix=PREFIX, dependencies=[rate_limited(Policy.PUBLIC)])


@dataclass(frozen=True)
class CopyCheckView:
    """What the check page shows about one certified copy."""

    document_id: str
    copy_number: str | None
    verdict: domain.CopyVerdict  # the copy as a whole: its signature and file, and whether it was revoked
    signature_valid: bool  # the signature and the stored file alone (a revoked copy may carry an intact signature)
    revoked_at: datetime | None
    revocation_reason: str | None
    signer: str | None
    signed_at: datetime | None
    certificate_serial: str | None
    sha256: str
    file_matches: bool
    agency: str


def copy_check_view(doc: store.Document, check: signing.SignatureCheck, settings: DigitizationSettings) -> CopyCheckView:
    """The page's view of a copy's check: the signature as read from the stored file, else as the register has it."""
    reports = check.reports
    last = reports[-1] if reports else None
    verdict = domain.copy_verdict(
        signed=bool(reports),
        intact=all(r.valid and r.intact for r in reports),
        trusted=all(r.trusted for r in reports),
        modified_after_signing=bool(last and last.modified_after_signing),
        file_matches=check.sha256_matches,
        revoked=doc.revoked_at is not None,
    )
    return CopyCheckView(
        document_id=doc.id,
        copy_number=doc.copy_number,
        verdict=verdict,
        signature_valid=not verdict.problems,
        revoked_at=doc.revoked_at,
        revocation_reason=doc.revocation_reason,
        signer=(last.signer if last else None) or doc.signer,
        signed_at=(last.signing_time if last else None) or doc.signed_at,
        certificate_serial=(last.certificate_serial if last else None) or doc.certificate_serial,
        sha256=check.sha256,
        file_matches=check.sha256_matches,
        agency=settings.unit_names.get(doc.unit) or doc.signer or "",
    )


@router.get("/ban-sao/{document_id}", name="certified_copy_check_page")
async def certified_copy_check(request: Request, document_id: Annotated[str, Path(max_length=36)], deps: Deps) -> HTMLResponse:
    """Is this certified copy valid: its signature, who signed it and when, its hash, whether it was revoked."""
    async with deps.db.reading() as tx:
        doc, check = await handlers.check_certified_copy(tx, document_id, deps=deps, unreadable_is_unsigned=True)
    view = copy_check_view(doc, check, deps.settings)
    context = {"v": view, "unit_name": view.agency or None, "page_title": "Kiểm tra bản sao điện tử"}
    return deps.pages.render(request, "copy_check.html", context)
