"""PAdES signatures with pyHanko: the unit's certificate from a PKCS#12 file, a visible block, and verification.

Blocking (CPU and file I/O): call these from async code through ``asyncio.to_thread``.
Files in, files out: a document is never held whole in memory here beyond what pyHanko reads.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.general import get_pyca_cryptography_hash, load_cert_from_pemder
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from services.digitization import pki
from services.digitization.settings import DigitizationSettings
from shared.pdf import FONT_FAMILY, font_files

log = logging.getLogger("motcua.digitization")

Box = tuple[int, int, int, int]


class SigningUnavailable(RuntimeError):
    """The PKCS#12 file is missing, unreadable or has no usable key."""


@dataclass(frozen=True)
class UnitSigner:
    """The unit's key and certificate, and the roots its signatures are checked against."""

    signer: signers.SimpleSigner
    name: str
    certificate_serial: str
    trust_roots: tuple[asn1_x509.Certificate, ...]
    not_after: datetime
    # pyHanko's estimate of the signature container's size, per (digest, tight): see _ReservingSigner
    reserved: dict[tuple[str, bool], int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class VisibleBlock:
    """Where the visible signature goes (PDF points, origin bottom-left) and what it says."""

    page: int
    box: Box
    lines: tuple[str, ...]


@dataclass(frozen=True)
class SignatureReport:
    """One signature as a verifier sees it."""

    field: str
    valid: bool
    intact: bool
    trusted: bool
    signer: str | None
    certificate_serial: str | None
    signing_time: datetime | None
    covers_whole_file: bool
    modified_after_signing: bool
    changes_allowed: bool
    summary: str


@dataclass(frozen=True)
class SignatureCheck:
    """A document's signatures as pyHanko reads them, and whether the stored bytes still hash to their name."""

    sha256: str
    sha256_matches: bool
    reports: list[SignatureReport] = field(default_factory=list)


class _KeyOnceSigner(signers.SimpleSigner):
    """pyHanko's in-memory signer, with its RSA key parsed once instead of on every signature.

    ``SimpleSigner.sign_raw`` loads the key from DER each time, and cryptography validates an RSA key on each load:
    about 100 ms of CPU, twice per signed PDF (pyHanko signs once to size the signature, then for real). Other
    mechanisms go through pyHanko's own path.
    """

    def __init__(self, loaded: signers.SimpleSigner) -> None:
        super().__init__(
            signing_cert=loaded.signing_cert,
            signing_key=loaded.signing_key,
            cert_registry=loaded.cert_registry,
            signature_mechanism=loaded.signature_mechanism,
        )
        self._rsa_key = serialization.load_der_private_key(self.signing_key.dump(), password=None)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        if isinstance(self._rsa_key, RSAPrivateKey) and mechanism.signature_algo == "rsassa_pkcs1v15":
            return self._rsa_key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        return super().sign_raw(data, digest_algorithm)


def load_signer(pkcs12_file: Path, password: str | None, extra_roots: tuple[Path, ...] = ()) -> UnitSigner:
    """Read the PKCS#12 archive; the chain inside it (and ``extra_roots``) become the trust roots."""
    try:
        data = pkcs12_file.read_bytes()
    except OSError as exc:
        raise SigningUnavailable(f"cannot read the PKCS#12 file {pkcs12_file}: {exc.strerror}") from exc
    try:
        loaded = signers.SimpleSigner.load_pkcs12_data(data, other_certs=[], passphrase=password.encode() if password else None)
    except ValueError as exc:
        raise SigningUnavailable(f"the PKCS#12 file {pkcs12_file} cannot be opened (wrong password?)") from exc
    signer = _KeyOnceSigner(loaded)
    cert = signer.signing_cert
    chain = [c for c in signer.cert_registry if c.issuer == c.subject or c.ca]
    roots = tuple(c for c in chain if c.self_signed != "no") + tuple(load_cert_from_pemder(str(p)) for p in extra_roots)
    if not roots:  # a chain without its root: trust the highest certificate given
        roots = tuple(chain) or (cert,)
    return UnitSigner(
        signer=signer,
        name=cert.subject.native.get("common_name", cert.subject.human_friendly),
        certificate_serial=format(cert.serial_number, "X"),
        trust_roots=roots,
        not_after=cert["tbs_certificate"]["validity"]["not_after"].native,
    )


def load_unit_signer(settings: DigitizationSettings) -> UnitSigner:
    """The unit's certificate; outside production, one made for this installation when none is configured."""
    p12, password = settings.signing_pkcs12_file, settings.signing_pkcs12_password
    secret = password.get_secret_value() if password else None
    if p12 is None:  # production refuses this in settings
        dev = pki.ensure_dev_pki(settings.dev_pki_dir)
        log.warning("no DIGITIZATION_SIGNING_PKCS12_FILE: signing with the development certificate in %s", dev.pkcs12)
        p12, secret = dev.pkcs12, dev.password
    return load_signer(p12, secret, tuple(settings.signing_trust_roots))


# The layout tables pyHanko's subsetter drops from the embedded subset anyway (GlyphAccumulator._extract_subset).
# Shaping (HarfBuzz) reads the font's own bytes, with them; only the fontTools copy that is subset loses them first.
_DROPPED_LAYOUT_TABLES = ("GPOS", "GDEF", "GSUB")


class _LeanSubsetAccumulator(GlyphAccumulator):
    """pyHanko's glyph accumulator, with the layout tables it drops from the subset removed *before* subsetting.

    fontTools' subsetter decompiles every layout table present on entry (``_compact_layout_tables``) before its
    ``drop_tables`` removes them: for Be Vietnam Pro that was most of the CPU of a signature's visible block. Taking
    them out first leaves the embedded subset byte for byte the same (tests/unit/test_signing_font_subset.py).
    """

    def _extract_subset(self, options=None):  # pyHanko's signature
        for tag in _DROPPED_LAYOUT_TABLES:
            if tag in self.tt:
                del self.tt[tag]
        super()._extract_subset(options)


class _LeanSubsetFactory(GlyphAccumulatorFactory):
    """``GlyphAccumulatorFactory`` making :class:`_LeanSubsetAccumulator` objects (same arguments, same object stream)."""

    def create_font_engine(self, writer, obj_stream=None):  # pyHanko's signature
        fh = open(self.font_file, "rb")  # noqa: SIM115 - pyHanko's own factory leaves it to the engine as well
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return _LeanSubsetAccumulator(
            writer=writer,
            font_handle=fh,
            font_size=self.font_size,
            ot_script_tag=self.ot_script_tag,
            ot_language_tag=self.ot_language_tag,
            writing_direction=self.writing_direction,
            bcp47_lang_code=self.bcp47_lang_code,
            obj_stream=obj_stream,
        )


class _ReservingSigner(signers.PdfSigner):
    """pyHanko's ``PdfSigner``, with its estimate of the space to reserve for the signature kept per unit signer.

    To size the ``/Contents`` placeholder, pyHanko makes a whole dry-run CMS signature before the real one (about a
    third of a signature's CPU). Without revocation info, timestamper or CAdES attributes (none are used here), its
    size depends only on the certificate chain and the digest, so the first estimate of a unit signer is reused:
    every signed file reserves exactly the bytes it reserved before.
    """

    def __init__(self, *args, reserved: dict[tuple[str, bool], int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._reserved = reserved

    def init_signing_session(self, *args, **kwargs):  # pyHanko's signature
        session = super().init_signing_session(*args, **kwargs)
        estimate = session.estimate_signature_container_size
        reserved, md = self._reserved, session.md_algorithm
        fixed = self.signature_meta.cades_signed_attr_spec is None and session.timestamper is None

        async def remembered(validation_info, tight=False):
            if validation_info is not None or not fixed:
                return await estimate(validation_info, tight=tight)
            if (md, tight) not in reserved:
                reserved[(md, tight)] = await estimate(validation_info, tight=tight)
            return reserved[(md, tight)]

        session.estimate_signature_container_size = remembered
        return session


@cache
def _stamp_style(font_size: int) -> TextStampStyle:
    return TextStampStyle(
        stamp_text="%(block)s",
        text_box_style=TextBoxStyle(
            font=_LeanSubsetFactory(str(font_files()[""]), font_size=font_size), leading=font_size + 3
        ),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MIN, y_align=AxisAlignment.ALIGN_MID, margins=Margins.uniform(4)
        ),
        border_width=1,
        background=None,
    )


def sign_file(
    source: Path,
    target: Path,
    unit: UnitSigner,
    *,
    field_name: str,
    reason: str,
    location: str | None = None,
    block: VisibleBlock | None = None,
    font_size: int = 8,
) -> None:
    """Sign ``source`` into ``target`` as an incremental update (PAdES baseline B, SHA-256)."""
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    spec = fields.SigFieldSpec(
        sig_field_name=field_name,
        on_page=block.page if block else 0,
        box=block.box if block else None,
    )
    with open(source, "rb") as inf, open(target, "wb") as out:
        writer = IncrementalPdfFileWriter(inf, strict=False)
        pdf_signer = _ReservingSigner(meta, unit.signer, stamp_style=_stamp_style(font_size), new_field_spec=spec,
                                      reserved=unit.reserved)
        text = "\n".join(unicodedata.normalize("NFC", line) for line in block.lines) if block else ""
        pdf_signer.sign_pdf(writer, appearance_text_params={"block": text}, output=out)


def page_boxes(path: Path) -> list[tuple[float, float]]:
    """Width and height (points) of every page, to place a block."""
    from pypdf import PdfReader

    reader = PdfReader(path, strict=False)
    return [(float(page.mediabox.width), float(page.mediabox.height)) for page in reader.pages]


def _name_of(cert: asn1_x509.Certificate | None) -> str | None:
    if cert is None:
        return None
    return cert.subject.native.get("common_name", cert.subject.human_friendly)


async def verify_file(path: Path, trust_roots: tuple[asn1_x509.Certificate, ...]) -> list[SignatureReport]:
    """Every signature of a PDF, checked against the given roots (no network: no OCSP or CRL fetching)."""
    context = ValidationContext(trust_roots=list(trust_roots), allow_fetching=False, revocation_mode="soft-fail")
    usage = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)
    reports = []
    with open(path, "rb") as f:
        reader = PdfFileReader(f, strict=False)
        for embedded in reader.embedded_signatures:
            status = await async_validate_pdf_signature(embedded, context, key_usage_settings=usage)
            whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
            cert = status.signing_cert
            reports.append(
                SignatureReport(
                    field=embedded.field_name,
                    valid=bool(status.valid and status.intact),
                    intact=bool(status.intact),
                    trusted=bool(status.trusted),
                    signer=_name_of(cert),
                    certificate_serial=format(cert.serial_number, "X") if cert is not None else None,
                    signing_time=status.signer_reported_dt,
                    covers_whole_file=whole,
                    modified_after_signing=not whole,
                    changes_allowed=bool(status.docmdp_ok) if not whole else True,
                    summary=status.summary(),
                )
            )
    return reports


def font_family() -> str:
    """The font the visible block is set in."""
    return FONT_FAMILY
