"""PDF electronic signatures (电子签名) validated with pyHanko and judged whole: are the signed byte
ranges intact, does the value verify against the signer's certificate, does it cover its whole
revision, and does what was added after it stay within what it permits (pyHanko's coverage level,
modification level and DocMDP verdict); who signed, who issued the certificate, when, and is there a
time-stamp.

Authenticity (真实性) is what a signature proves, so the result is recorded per signature in
元数据 (schemas/signature_info.py) and judged by GD-1-6. Trust is a separate question: a signer
certificate is "trusted" only when it chains to a root the configuration names
(`signatures.trust_roots`); without roots the field is left out rather than guessed, and nothing is
fetched from the network (no OCSP, CRL or AIA: `allow_fetching=False`).

SM2 signatures (OIDs 1.2.156.10197.*) are verified with gmssl-pyx (packager/pdf_sm2.py) and judged
by the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from schemas.pickling import by_fields
from schemas.signature_info import SignatureRecord, SignatureState

# pyHanko logs a full traceback at WARNING for every self-signed or untrusted certificate; the
# outcome is in the record, so those lines would only flood the night's log.
for _name in ("pyhanko.sign.validation", "pyhanko.sign.validation.generic_cms", "pyhanko_certvalidator"):
    logging.getLogger(_name).setLevel(logging.ERROR)

_SM_PREFIX = "1.2.156.10197."


@by_fields
@dataclass(frozen=True, slots=True)
class PdfSignatureInspection:
    signatures: tuple[SignatureRecord, ...] = ()
    error: str | None = None  # why the signatures could not be read at all
    fields: int = 0  # signature fields, signed or not

    @property
    def invalid(self) -> list[SignatureRecord]:
        return [s for s in self.signatures if s.state == SignatureState.INVALID]


@dataclass(frozen=True, slots=True)
class TrustRoots:
    """Certificates a signer must chain to for `trusted`; empty: trust is not judged."""

    paths: tuple[str, ...] = ()
    certificates: tuple[Any, ...] = field(default_factory=tuple)


@cache
def load_trust_roots(paths: tuple[str, ...]) -> TrustRoots:
    """PEM or DER certificates, read once per set of paths."""
    from asn1crypto import pem, x509

    certs = []
    for p in paths:
        data = Path(p).read_bytes()
        if pem.detect(data):
            certs += [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
        else:
            certs.append(x509.Certificate.load(data))
    return TrustRoots(paths=paths, certificates=tuple(certs))


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


def inspect_pdf_signatures(path: Path, roots: TrustRoots | None = None) -> PdfSignatureInspection:
    """Every embedded signature of the PDF, validated; a PDF without signatures gives an empty result.
    The caller has already established that the file opens (packager/pdf.py) and is within the
    parse limit."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with path.open("rb") as fh:
            reader = PdfFileReader(fh, strict=False)
            embedded = list(reader.embedded_signatures)
            return PdfSignatureInspection(signatures=tuple(_validate(s, roots) for s in embedded),
                                          fields=len(embedded))
    except Exception as exc:  # a PDF pypdf opens may still have a signature dictionary pyHanko refuses
        return PdfSignatureInspection(error=f"signatures cannot be read: {type(exc).__name__}: {exc}")


def _algorithms(sig: Any) -> tuple[str, str]:
    info = sig.signer_info
    return info["signature_algorithm"]["algorithm"].dotted, info["digest_algorithm"]["algorithm"].dotted


def _cert_names(sig: Any) -> tuple[str | None, str | None]:
    cert = sig.signer_cert
    if cert is None:
        return None, None
    return cert.subject.human_friendly, cert.issuer.human_friendly


def _validate(sig: Any, roots: TrustRoots | None) -> SignatureRecord:
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    try:
        sig_oid, digest_oid = _algorithms(sig)
        signer, issuer = _cert_names(sig)
    except Exception as exc:
        return SignatureRecord(kind="PDF", state=SignatureState.INVALID,
                               note=f"field {sig.field_name!r}: signature value unreadable "
                               f"({type(exc).__name__}: {exc})")
    try:
        level = sig.evaluate_signature_coverage()
        coverage = level.name if level is not None else None
    except Exception:  # byte ranges that do not parse: the validation below says why
        coverage = None
    base = {"kind": "PDF", "signer": signer, "issuer": issuer, "coverage": coverage,
            "whole_file": coverage == "ENTIRE_FILE",
            "signing_time": _when(sig.self_reported_timestamp)}
    if sig_oid.startswith(_SM_PREFIX) or digest_oid.startswith(_SM_PREFIX):
        return _sm2(sig, roots, base)
    context = ValidationContext(trust_roots=list(roots.certificates) if roots else [], allow_fetching=False)
    document_timestamp = sig.sig_object_type == "/DocTimeStamp"  # PAdES-LTA: a time-stamp over the document
    try:
        status = validate_pdf_timestamp(sig, context) if document_timestamp else validate_pdf_signature(sig, context)
    except Exception as exc:
        return SignatureRecord(state=SignatureState.INVALID, method=sig_oid,
                               note=f"field {sig.field_name!r}: validation failed: {type(exc).__name__}: {exc}", **base)
    if document_timestamp:
        base["kind"] = "PDF document time-stamp"
        stamp = _when(status.timestamp)
    else:
        ts = status.timestamp_validity
        stamp = _when(ts.timestamp) if ts is not None else None
    state, note = _judge(status, coverage)
    level = status.modification_level
    modification = None if level is None else level.name + (
        "" if status.docmdp_ok is None else f"; DocMDP {'permits' if status.docmdp_ok else 'forbids'} it")
    return SignatureRecord(
        state=state, intact=bool(status.intact), method=str(status.pkcs7_signature_mechanism or sig_oid),
        timestamp=stamp, trusted=bool(status.trusted) if roots and roots.certificates else None,
        modification=modification, note=f"field {sig.field_name!r}: {note}",
        **{**base, "signing_time": _when(getattr(status, "signer_reported_dt", None)) or base["signing_time"]},
    )


def _judge(status: Any, coverage: str | None) -> tuple[SignatureState, str]:
    """The signature judged whole, as pyHanko reports it: 有效 only when intact, valid, covering its
    whole revision (or the file) and followed only by changes its DocMDP rules permit (form filling,
    annotations where allowed, later signatures and time-stamps); a nonstandard coverage or a later
    change beyond that is 无效, naming which; a cryptographic constraint failure (a digest the
    algorithm disallows) is 存在未验证, naming it."""
    indication = getattr(status.trust_problem_indic, "name", None) or ""
    if not status.intact:
        return SignatureState.INVALID, "the signed byte ranges were changed after signing"
    if not status.valid:
        return SignatureState.INVALID, "the signature value does not verify against the signer certificate"
    if coverage not in ("ENTIRE_FILE", "ENTIRE_REVISION"):
        return SignatureState.INVALID, (f"nonstandard coverage ({coverage or 'unreadable'}): the signed byte ranges "
                                        "leave a gap or an uncovered part of their revision")
    level = status.modification_level
    # docmdp_ok None: no DocMDP verdict (a document time-stamp); the difference analysis decides
    beyond = status.docmdp_ok is False or (status.docmdp_ok is None and (level is None or level.name == "OTHER"))
    if coverage == "ENTIRE_REVISION" and beyond:
        return SignatureState.INVALID, (f"changed after signing beyond what the signature permits (modification level "
                                        f"{level.name if level is not None else 'unknown'}"
                                        + (f": {str(status.diff_result).splitlines()[0]}"
                                           if level is None or level.name == "OTHER" else "")
                                        + ")")
    if "CRYPTO_CONSTRAINTS" in indication:
        return SignatureState.UNVERIFIED, (f"cryptographic constraint failure ({indication}): the algorithm "
                                           f"{status.pkcs7_signature_mechanism} with {status.md_algorithm} is "
                                           "disallowed, so the signature is not judged")
    note = "signed byte ranges intact, signature value verifies"
    if coverage != "ENTIRE_FILE":
        note += f"; covers its revision; later changes are {level.name if level else 'unknown'}, which it permits"
    return SignatureState.VALID, note


def _sm2(sig: Any, roots: TrustRoots | None, base: dict[str, Any]) -> SignatureRecord:
    """An SM2 signature, verified with gmssl-pyx (packager/pdf_sm2.py) and judged like any other."""
    from packager.pdf_sm2 import sm2_status

    sm2_roots = _sm2_roots(roots.paths) if roots and roots.paths else ()
    where = f"field {sig.field_name!r}: "
    try:
        status, cert, why = sm2_status(sig, sm2_roots)
    except Exception as exc:  # a structure pyHanko or the walk refuses
        return SignatureRecord(state=SignatureState.INVALID, method="SM2-with-SM3",
                               note=f"{where}SM2 signature unreadable ({type(exc).__name__}: {exc})", **base)
    if why is not None:
        return SignatureRecord(state=SignatureState.UNVERIFIED, method="SM2-with-SM3", note=where + why, **base)
    state, note = _judge(status, base["coverage"])
    when = sig.self_reported_timestamp
    if state == SignatureState.VALID and cert is not None and when is not None and not cert.valid_at(when):
        state, note = SignatureState.INVALID, (f"certificate validity: the signer certificate was not valid at the "
                                               f"signing time {when:%Y-%m-%d %H:%M:%S}")
    level = status.modification_level
    verdict = "permits" if status.docmdp_ok else "forbids"
    return SignatureRecord(
        state=state, intact=bool(status.intact), method="SM2-with-SM3", trusted=status.trusted,
        modification=None if level is None else f"{level.name}; DocMDP {verdict} it", note=where + note, **base)


@cache
def _sm2_roots(paths: tuple[str, ...]) -> tuple[Any, ...]:
    """The configured roots as SM2 certificates (those that are), for SM2 signers."""
    from packager.sm2 import DerError, load_certificates

    certs: list[Any] = []
    for p in paths:
        try:
            certs += [c for c in load_certificates(Path(p).read_bytes()) if c.public_key is not None]
        except (OSError, DerError, IndexError, ValueError):
            continue
    return tuple(certs)


def signature_kinds(records: Sequence[SignatureRecord]) -> str:
    """"2 signature(s): 1 有效, 1 存在未验证", for a check item's detail."""
    if not records:
        return "no signature"
    counts: dict[str, int] = {}
    for r in records:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    return f"{len(records)} signature(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
