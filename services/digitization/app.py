"""Digitization: Số hóa: the file store, digitized papers, signed results and certified electronic copies."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter

from services.digitization import pki, signing
from services.digitization.api import router
from services.digitization.handlers import SUBSCRIPTIONS, Context
from services.digitization.settings import DigitizationSettings
from services.digitization.storage import FileStore, LocalFileStore, S3FileStore
from shared.clock import Clock
from shared.service import build_app

log = logging.getLogger("motcua.digitization")


def make_file_store(settings: DigitizationSettings) -> FileStore:
    """The configured file store (blocking: an S3 bucket may be checked or created)."""
    if settings.storage_backend == "s3":
        assert settings.s3_bucket is not None
        s3 = S3FileStore(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            spool_dir=settings.files_root / ".tmp",
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None,
        )
        if settings.s3_create_bucket:
            s3.ensure_bucket()
        return s3
    return LocalFileStore(settings.files_root)


def load_unit_signer(settings: DigitizationSettings) -> signing.UnitSigner:
    """The unit's certificate; outside production, one made for this installation when none is configured."""
    p12, password = settings.signing_pkcs12_file, settings.signing_pkcs12_password
    secret = password.get_secret_value() if password else None
    if p12 is None:  # production refuses this in settings
        dev = pki.ensure_dev_pki(settings.dev_pki_dir)
        log.warning("no DIGITIZATION_SIGNING_PKCS12_FILE: signing with the development certificate in %s", dev.pkcs12)
        p12, secret = dev.pkcs12, dev.password
    return signing.load_signer(p12, secret, tuple(settings.signing_trust_roots))


def create_app(
    settings: DigitizationSettings | None = None, *, clock: Clock | None = None, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The digitization service."""
    settings = settings or DigitizationSettings()

    def on_start(app: FastAPI) -> None:
        app.state.context = Context(
            db=app.state.db, files=make_file_store(settings), signer=load_unit_signer(settings), settings=settings
        )

    return build_app(
        settings,
        title="motcua digitization",
        description="Số hóa: the file store, digitized papers, signed results and certified electronic copies.",
        routers=[router],
        subscription=SUBSCRIPTIONS,
        clock=clock,
        span_exporter=span_exporter,
        on_start=on_start,
    )
