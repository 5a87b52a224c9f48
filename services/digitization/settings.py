"""Digitization settings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import SecretStr, model_validator

from shared.settings import PLACEHOLDER_SECRETS, ServiceSettings

DEV_OWNER_KEY_SECRET = "development-only-owner-key-secret"


class DigitizationSettings(ServiceSettings):
    """Settings of the digitization service (``DIGITIZATION_*`` overrides the shared variables)."""

    service: ClassVar[str] = "digitization"
    port: int = 8003
    motcua_home: Path = Path(".motcua")
    # The file store.
    storage_backend: Literal["local", "s3"] = "local"
    storage_root: Path | None = None  # local: default <MOTCUA_HOME>/files; also the spool for S3 uploads
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False
    # Uploads.
    max_upload_bytes: int = 50 * 1024 * 1024
    default_scan_dpi: int = 200
    # Signing with the unit's certificate (PAdES).
    signing_pkcs12_file: Path | None = None
    signing_pkcs12_password: SecretStr | None = None
    signing_trust_roots: list[Path] = []
    sign_digitized: bool = True
    signing_location: str | None = None
    # The citizen's document store: the id number is kept only as HMAC-SHA256 with this key.
    owner_key_secret: SecretStr | None = None
    unit_names: dict[str, str] = {}
    # Certified electronic copies (chứng thực bản sao điện tử từ bản chính).
    certified_copy_procedures: list[str] = ["2.000815"]
    public_base_url: str = "http://127.0.0.1:8003"
    # Back-digitization batches (a ZIP of scans and their metadata sheet, filed all or nothing).
    backfile_max_batch_bytes: int = 1024 * 1024 * 1024
    backfile_max_files: int = 2000
    backfile_sign_workers: int = 2

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> DigitizationSettings:
        if self.environment == "production":
            if self.signing_pkcs12_file is None:
                raise ValueError("production needs DIGITIZATION_SIGNING_PKCS12_FILE (the unit's certificate)")
            secret = self.owner_key_secret.get_secret_value() if self.owner_key_secret else ""
            if secret.strip().lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
                raise ValueError("production needs OWNER_KEY_SECRET of at least 16 characters, not a placeholder")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        if self.max_upload_bytes < 1024:
            raise ValueError("MAX_UPLOAD_BYTES below 1 KiB cannot hold a scan")
        return self

    @property
    def files_root(self) -> Path:
        """The local store's root (and the spool directory of uploads)."""
        return (self.storage_root or self.motcua_home / "files").resolve()

    @property
    def dev_pki_dir(self) -> Path:
        """Where a development stack keeps the certificate it made for itself."""
        return (self.motcua_home / "pki").resolve()

    def owner_secret(self) -> bytes:
        """The HMAC key of owner ids (a fixed development key outside production)."""
        if self.owner_key_secret is not None:
            return self.owner_key_secret.get_secret_value().encode()
        return DEV_OWNER_KEY_SECRET.encode()
