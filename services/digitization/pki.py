"""A test CA and unit certificates, with only ``cryptography``: for the tests and the local stack.

Nothing here knows about motcua; any script can call it::

    pki = write_test_pki(Path("/tmp/pki"), unit_name="UBND phường Phú Hội", unit_code="000.00.12.H56")
    # pki.pkcs12 (the unit's key and certificate with its chain), pki.ca_pem (the trust root), pki.password

Production units hold certificates from a licensed CA (a Vietnamese public digital-signature
provider or the Government CA, Ban Cơ yếu Chính phủ); they are configured as a PKCS#12 file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey


@dataclass(frozen=True)
class PkiFiles:
    """Files of a test CA and one unit certificate."""

    pkcs12: Path
    ca_pem: Path
    password: str
    unit_name: str


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def create_test_ca(common_name: str = "motcua Test Root CA", *, days: int = 3650, now: datetime | None = None) -> tuple[Key, x509.Certificate]:
    """A self-signed root that may sign unit certificates (and nothing else)."""
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(common_name, "motcua test PKI")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_unit_certificate(
    ca_key: Key, ca_cert: x509.Certificate, *, unit_name: str, unit_code: str | None = None, days: int = 825,
    now: datetime | None = None,
) -> tuple[Key, x509.Certificate]:
    """A signing certificate for a unit (ký số cơ quan): digital signature and non-repudiation."""
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(unit_name, unit_name)
    if unit_code:
        subject = x509.Name([*subject, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit_code)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pkcs12_bytes(key: Key, cert: x509.Certificate, chain: list[x509.Certificate], password: str) -> bytes:
    """The key, its certificate and the chain as one password-protected PKCS#12 archive."""
    encryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"unit", key, cert, chain, encryption)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def write_test_pki(directory: Path, *, unit_name: str, unit_code: str | None = None, password: str = "motcua-test") -> PkiFiles:
    """Create a test CA and a unit certificate under ``directory``; return the file paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = create_test_ca()
    key, cert = issue_unit_certificate(ca_key, ca_cert, unit_name=unit_name, unit_code=unit_code)
    ca_path, p12_path = directory / "ca.pem", directory / "unit.p12"
    _write_private(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(p12_path, pkcs12_bytes(key, cert, [ca_cert], password))
    return PkiFiles(pkcs12=p12_path, ca_pem=ca_path, password=password, unit_name=unit_name)


def ensure_dev_pki(directory: Path, *, unit_name: str = "Bộ phận Một cửa (chứng thư thử nghiệm)") -> PkiFiles:
    """The local stack's certificate: created once under ``directory`` (a lock keeps two processes from racing)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    password = "motcua-dev"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p12, ca = directory / "unit.p12", directory / "ca.pem"
        if p12.exists() and ca.exists():
            return PkiFiles(pkcs12=p12, ca_pem=ca, password=password, unit_name=unit_name)
        return write_test_pki(directory, unit_name=unit_name, password=password)
