"""The national procedure list, read through the provincial LGSP (``shared/lgsp.py``, DOMAIN §7.1): the list
(``LayDanhSachTTHC``), then each procedure's record (``LayThuTuc``), read into the catalog's terms by the mapping
(``domain.DEFAULT_NATIONAL_MAPPING``, corrected by ``INTAKE_NATIONAL_CATALOG_MAPPING``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.intake import domain
from services.intake.settings import IntakeSettings
from shared.errors import Problem
from shared.lgsp import LgspClient, LgspConfig, LgspRefused, LgspUnavailable


def lgsp_config(settings: IntakeSettings) -> LgspConfig | None:
    """How intake reaches the LGSP (the same ``DVCQG_*`` settings as reporting's sync), or None when it is not set."""
    if not settings.dvcqg_lgsp_url:
        return None
    return LgspConfig(
        base_url=settings.dvcqg_lgsp_url,
        username=settings.dvcqg_username,
        password=settings.dvcqg_password,
        dstcode=settings.dvcqg_dstcode,
        madonvi=settings.dvcqg_madonvi,
        auth_endpoint=settings.dvcqg_auth_endpoint,
        integration_endpoint=settings.dvcqg_integration_endpoint,
        session_invalid_codes=tuple(settings.dvcqg_session_invalid_codes),
        session_ttl_seconds=settings.dvcqg_session_ttl_seconds or None,
        timeout_seconds=settings.dvcqg_timeout_seconds,
    )


@dataclass(frozen=True)
class NationalList:
    """What the LGSP said: every code of the list, the records read, and the codes whose record could not be had."""

    listed: tuple[str, ...]
    records: tuple[domain.NationalProcedure, ...]
    failed: tuple[tuple[str, str], ...] = ()


async def fetch(
    config: LgspConfig | None,
    mapping: Mapping[str, Any],
    *,
    madonvi: str | None = None,
    codes: list[str] | None = None,
    concurrency: int = 4,
) -> NationalList:
    """The list, then the record of each of its procedures (only ``codes`` when given), ``concurrency`` at a time.

    An LGSP that cannot be reached is a 503 problem and a refused list a 502: nothing partial is compared. A refused
    record is one failed procedure (reported, nothing done to it).
    """
    if config is None:
        raise Problem(503, "lgsp-not-configured", "The LGSP is not configured", "Set DVCQG_LGSP_URL (and its login) to read the national list.")
    async with LgspClient(config) as lgsp:
        try:
            answer = await lgsp.call(mapping["list_service"], dict(mapping["list_payload"]), madonvi=madonvi)
        except LgspUnavailable as exc:
            raise Problem(503, "lgsp-unavailable", "The LGSP did not answer", str(exc)) from None
        except LgspRefused as exc:
            raise Problem(502, "lgsp-refused", "The LGSP refused the national list", str(exc), lgsp_code=exc.code) from None
        items = domain.pick(answer.body, mapping["list_items"])
        if not isinstance(items, list):
            raise Problem(502, "lgsp-answer", "The national list is not where the mapping says",
                          f"{mapping['list_service']}: no list at {mapping['list_items']!r}")  # fmt: skip
        found_codes = (domain.pick(i, mapping["list_code"]) for i in items)
        listed = tuple(dict.fromkeys(str(c).strip() for c in found_codes if c is not None and str(c).strip()))
        asked = set(codes) if codes is not None else None
        wanted = [c for c in listed if asked is None or c in asked]
        gate = asyncio.Semaphore(concurrency)

        async def one(code: str) -> domain.NationalProcedure | tuple[str, str]:
            async with gate:
                try:
                    detail = await lgsp.call(mapping["detail_service"], {mapping["detail_code_param"]: code}, madonvi=madonvi)
                except LgspRefused as exc:
                    return code, f"{mapping['detail_service']} refused ({exc.code}): {exc.message}"
            record = domain.pick(detail.body, mapping["detail_record"])
            if not isinstance(record, dict):
                return code, f"{mapping['detail_service']}: no record at {mapping['detail_record']!r}"
            return domain.national_procedure(record, mapping, code)

        try:
            found = await asyncio.gather(*(one(c) for c in wanted))
        except LgspUnavailable as exc:
            raise Problem(503, "lgsp-unavailable", "The LGSP did not answer", str(exc)) from None
    records = tuple(r for r in found if isinstance(r, domain.NationalProcedure))
    failed = tuple(r for r in found if isinstance(r, tuple))
    return NationalList(listed=listed, records=records, failed=failed)
