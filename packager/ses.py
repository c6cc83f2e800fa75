"""The signed value of an OFD signature (SignedValue.dat) verified: an electronic seal (电子印章,
SES_Signature of GB/T 38540 "V4" or GM/T 0031 "V1") for Type="Seal", a CMS SignedData or a bare
SM2 value for Type="Sign".

A seal is four checks, each named when it fails: dataHash (the SM3 of Signature.xml's bytes), the
signer signature (SM2-with-SM3, signer ID 1234567812345678, over TBS_Sign exactly as stored, with
the signer certificate the seal carries), the maker signature (the seal authority's signature over
the seal's own information: DER(SES_SealInfo) in V4; SEQUENCE{sealInfo, cert, signAlgID} in V1,
as every real seal of each version measured shows) and the certificate validity (the signer
certificate was valid at the signing time, since most have expired by the time they are archived).
Some V1 producers sign the dataHash itself as the SM3 digest e instead of TBS_Sign; that is accepted
and said in the note, since the dataHash still binds Signature.xml and so every protected file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from packager.sm2 import (
    SM2_SIGN_OIDS,
    Certificate,
    DerError,
    Tlv,
    bit_string,
    chains_to,
    der_time,
    load_certificate,
    oid,
    read_tlv,
    sm2_verify,
)


@dataclass(slots=True)
class Verdict:
    """What one signed value showed. `failed` names checks that failed (无效); `unverified` says why
    it could not be judged (存在未验证); neither: 有效."""

    failed: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signer: Certificate | None = None
    signer_name: str | None = None
    issuer: str | None = None
    signing_time: str | None = None
    timestamp: str | None = None
    method: str | None = None
    trusted: bool | None = None
    seal: str | None = None  # "name (ID …, type n, valid a to b, maker …)"
    eseal: bytes | None = None  # the seal (SESeal) inside the signature, to compare with Seal.esl


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _string(tlv: Tlv) -> str:
    return tlv.value.decode("utf-8", "replace")


def _cert(raw: bytes, role: str, verdict: Verdict) -> Certificate | None:
    try:
        cert = load_certificate(raw)
    except (DerError, IndexError, ValueError) as exc:
        verdict.unverified.append(f"the {role} certificate cannot be read ({exc})")
        return None
    if cert.public_key is None:
        verdict.unverified.append(f"the {role} certificate's key is not an SM2 key")
        return None
    return cert


def verify_seal(value: bytes, signature_xml: bytes, roots: tuple[Certificate, ...]) -> Verdict:
    """An SES_Signature over `signature_xml` (the bytes of Signature.xml)."""
    verdict = Verdict(method="SM2-with-SM3")
    try:
        top = read_tlv(value)
        parts = top.items()
        tbs = parts[0]
        fields = tbs.items()
        version = int.from_bytes(fields[0].value, "big")
    except (DerError, IndexError) as exc:
        verdict.failed.append(f"SignedValue: not an SES_Signature ({exc})")
        return verdict
    try:
        if version >= 2 or (len(parts) >= 4 and parts[1].tag == 0x04):
            _v4(parts, fields, signature_xml, roots, verdict)
        else:
            _v1(parts, fields, signature_xml, roots, verdict)
    except (DerError, IndexError, ValueError) as exc:
        verdict.failed.append(f"SignedValue: SES_Signature V{version} is malformed ({exc})")
    return verdict


def _seal_info(info: Tlv, verdict: Verdict, maker: Certificate | None) -> None:
    items = info.items()
    es_id = _string(items[1])
    prop = items[2].items()
    times = [der_time(t) for t in prop if t.tag in (0x17, 0x18)]
    kind = int.from_bytes(prop[0].value, "big") if prop and prop[0].tag == 0x02 else None
    valid = f", valid {times[-2]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}" if len(times) >= 2 else ""
    by = f", maker {maker.subject}" if maker else ""
    verdict.seal = f"{_string(prop[1])} (ID {es_id}, type {kind}{valid}{by})"


def _common(when: datetime, data_hash: bytes, signature_xml: bytes, signer: Certificate | None,
            verdict: Verdict) -> None:
    verdict.signing_time = when.isoformat()
    if data_hash != hashlib.new("sm3", signature_xml).digest():
        verdict.failed.append("dataHash: differs from the SM3 of Signature.xml (Signature.xml was changed)")
    if signer is not None:
        verdict.signer, verdict.signer_name, verdict.issuer = signer, signer.subject, signer.issuer
        if not signer.valid_at(when):
            verdict.failed.append(f"certificate validity: the signer certificate was not valid at the signing time "
                                  f"{when:%Y-%m-%d %H:%M:%S}Z (valid {signer.not_before:%Y-%m-%d} to "
                                  f"{signer.not_after:%Y-%m-%d})")


def _algorithm(tlv: Tlv, role: str, verdict: Verdict) -> bool:
    found = oid(tlv)
    if found not in SM2_SIGN_OIDS:
        verdict.unverified.append(f"the {role} signature algorithm {found} is not SM2")
        return False
    return True


def _trust(signer: Certificate | None, maker: Certificate | None, roots: tuple[Certificate, ...],
           verdict: Verdict) -> None:
    if roots and signer is not None and maker is not None:
        verdict.trusted = chains_to(signer, roots) and chains_to(maker, roots)


def _v4(parts: list[Tlv], fields: list[Tlv], signature_xml: bytes, roots: tuple[Certificate, ...],
        verdict: Verdict) -> None:
    verdict.eseal = fields[1].raw
    eseal = fields[1].items()
    seal_info, maker_raw, maker_alg, maker_sig = eseal[0], eseal[1].value, eseal[2], bit_string(eseal[3])
    when, data_hash = der_time(fields[2]), bit_string(fields[3])
    signer = _cert(parts[1].value, "signer", verdict)
    maker = _cert(maker_raw, "seal maker", verdict)
    _seal_info(seal_info, verdict, maker)
    _common(when, data_hash, signature_xml, signer, verdict)
    if len(parts) > 4 and parts[4].tag in (0xA0, 0x80, 0x03):
        verdict.timestamp = _timestamp(parts[4])
    if signer is not None and _algorithm(parts[2], "signer", verdict) and \
            not sm2_verify(signer.public_key or b"", parts[0].raw, bit_string(parts[3])):
        verdict.failed.append("signer signature: does not verify over TBS_Sign with the signer certificate")
    if maker is not None and _algorithm(maker_alg, "seal maker", verdict) and \
            not sm2_verify(maker.public_key or b"", seal_info.raw, maker_sig):
        verdict.failed.append("maker signature: the seal maker's signature over the seal information does not verify")
    _trust(signer, maker, roots, verdict)


def _v1(parts: list[Tlv], fields: list[Tlv], signature_xml: bytes, roots: tuple[Certificate, ...],
        verdict: Verdict) -> None:
    verdict.eseal = fields[1].raw
    eseal = fields[1].items()
    seal_info, sign_info = eseal[0], eseal[1].items()
    maker = _cert(sign_info[0].value, "seal maker", verdict)
    when, data_hash = der_time(fields[2]), bit_string(fields[3])
    signer = _cert(fields[5].value, "signer", verdict)
    _seal_info(seal_info, verdict, maker)
    _common(when, data_hash, signature_xml, signer, verdict)
    signature = bit_string(parts[1])
    if signer is not None and _algorithm(fields[6], "signer", verdict):
        key = signer.public_key or b""
        if not sm2_verify(key, parts[0].raw, signature):
            if len(data_hash) == 32 and sm2_verify(key, data_hash, signature, digest=True):
                verdict.notes.append("the signer signed the dataHash itself (a non-standard V1 producer)")
            else:
                verdict.failed.append("signer signature: does not verify over TBS_Sign with the signer certificate")
    if maker is not None and _algorithm(sign_info[1], "seal maker", verdict):
        signed = _der(0x30, seal_info.raw + sign_info[0].raw + sign_info[1].raw)
        if not sm2_verify(maker.public_key or b"", signed, bit_string(sign_info[2])):
            verdict.failed.append("maker signature: the seal maker's signature over the seal information does not "
                                  "verify")
    _trust(signer, maker, roots, verdict)


def _timestamp(tlv: Tlv) -> str | None:
    """The time of the RFC 3161 token in timeStamp [0] (implicit BIT STRING, or explicit around one),
    when it parses; "present (not parsed)" otherwise: it is recorded, not judged."""
    import pyhanko.pdf_utils.reader
    import pyhanko.sign.general  # noqa: F401
    from asn1crypto import cms

    candidates = [tlv.value[1:], tlv.value]
    try:
        inner = read_tlv(tlv.value)
        candidates.append(inner.value[1:] if inner.tag == 0x03 else inner.raw)
    except DerError:
        pass
    for raw in candidates:
        try:
            token = cms.ContentInfo.load(raw)
            return str(token["content"]["encap_content_info"]["content"].parsed["gen_time"].native.isoformat())
        except Exception:  # not this reading; try the next
            continue
    return "present (not parsed)"


def verify_sign(value: bytes, signature_xml: bytes, signers: tuple[Certificate, ...],
                roots: tuple[Certificate, ...]) -> Verdict:
    """Type="Sign": a CMS SignedData (with or without signed attributes) or a bare SM2 value."""
    verdict = Verdict(method="SM2-with-SM3")
    digest = hashlib.new("sm3", signature_xml).digest()
    try:
        items = read_tlv(value).items()
    except (DerError, IndexError) as exc:
        if len(value) != 64:
            verdict.failed.append(f"SignedValue: neither CMS nor an SM2 value ({exc})")
            return verdict
        items = []
    if len(items) == 2 and items[0].tag == 0x06 and items[1].tag == 0xA0:
        _cms(items[1].items()[0].raw, signature_xml, digest, signers, verdict)
    else:  # a bare SM2 value (DER {r, s} or r‖s) over Signature.xml
        verdict.method = "SM2 (bare value)"
        if not signers:
            verdict.unverified.append("a bare SM2 signature value with no certificate in the file and none "
                                      "configured (signatures.signer_certificates)")
        elif not any(sm2_verify(c.public_key or b"", signature_xml, value) for c in signers if c.public_key):
            verdict.failed.append("signer signature: verifies with none of the configured signer certificates")
        else:
            verdict.signer = next(c for c in signers if sm2_verify(c.public_key or b"", signature_xml, value))
    if verdict.signer is not None:
        verdict.signer_name, verdict.issuer = verdict.signer.subject, verdict.signer.issuer
        if roots:
            verdict.trusted = chains_to(verdict.signer, roots)
    return verdict


def _cms(value: bytes, signature_xml: bytes, digest: bytes, signers: tuple[Certificate, ...],
         verdict: Verdict) -> None:
    """`value`: the SignedData inside the ContentInfo (whose type is PKCS #7's or the SM2 one)."""
    # pyHanko adds CMS attribute and content type names to asn1crypto's tables when imported, and
    # asn1crypto freezes its reverse tables at first use: load it first, or a later PDF check fails.
    import pyhanko.pdf_utils.reader
    import pyhanko.sign.general  # noqa: F401
    from asn1crypto import cms

    try:
        signed = cms.SignedData.load(value)
        info = signed["signer_infos"][0]
        sig_value = info["signature"].native
        in_file = [load_certificate(c.chosen.dump()) for c in (signed["certificates"] or [])]
        attrs = info["signed_attrs"]
        content = signed["encap_content_info"]["content"]
        econtent = content.native if content.native is not None else None
        when = next((a["values"][0].native for a in attrs if a["type"].native == "signing_time"), None) \
            if attrs.native else None
    except Exception as exc:
        verdict.failed.append(f"SignedValue: not a CMS SignedData ({type(exc).__name__}: {exc})")
        return
    if attrs.native:
        found = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        if found != digest:
            verdict.failed.append("messageDigest: differs from the SM3 of Signature.xml (Signature.xml was changed)")
        message = b"\x31" + attrs.dump()[1:]
    elif econtent is not None:
        if econtent not in (digest, signature_xml):
            verdict.failed.append("content: the signed content is not Signature.xml nor its SM3")
        message = econtent
    else:
        message = signature_xml
    candidates = in_file or list(signers)
    if not candidates:
        verdict.unverified.append("the CMS carries no certificate and none is configured "
                                  "(signatures.signer_certificates)")
        return
    signer = next((c for c in candidates if c.public_key and sm2_verify(c.public_key, message, sig_value)), None)
    if signer is None:
        verdict.failed.append("signer signature: the CMS signature does not verify with its signer certificate")
        signer = candidates[0]
    verdict.signer = signer
    if when is not None:
        verdict.signing_time = when.isoformat()
        if not signer.valid_at(when):
            verdict.failed.append(f"certificate validity: the signer certificate was not valid at the signing time "
                                  f"{when:%Y-%m-%d %H:%M:%S}")
