"""An OFD's signatures and seals (Signs/Signatures.xml → Sign_N/Signature.xml) verified: the
references (each protected file's digest by CheckMethod: SM3, SM3 with Z_A as GM/T 0006 defines
…401.2, SHA-256, SHA-1) and the signed value (packager/ses.py).

A document sealed twice: the second seal's addition rewrites Signs/Signatures.xml, which the first
seal's references often protect. That is told apart from a change by rebuilding the earlier list:
the current list's bytes with the entries that follow the first seal's own entry cut out (and
MaxSignId put back to the highest remaining ID, or left as it is, or, for producers that append
their own MaxSignId after their entry, everything after the first seal's entry up to the list's
end tag cut out); if one of those candidates has
the protected digest, the list changed only by the later seals' entries and nothing they protect
is affected. A list whose earlier form cannot be rebuilt that way is 存在未验证 for that seal (it
may be a producer that rewrote the whole list), never 有效; any other protected file that differs
is 无效, naming the file.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from packager.ofd_container import XML_PART_LIMIT, Broken, Container, child, children, text
from packager.ses import Verdict, verify_seal, verify_sign
from packager.sm2 import Certificate, z_value
from schemas.pickling import by_fields
from schemas.signature_info import SignatureRecord, SignatureState

SM3_WITH_Z = "sm3-z"
SIGNATURES_WARNING = "W-OFD-SIGNATURES-MISSING"
# CheckMethod of Signature.xml/SignedInfo/References, as OID or name -> hashlib name.
_DIGESTS = {
    "1.2.156.10197.1.401": "sm3", "sm3": "sm3", "1.2.156.10197.1.401.1": "sm3",
    "1.2.156.10197.1.401.2": SM3_WITH_Z,
    "2.16.840.1.101.3.4.2.1": "sha256", "sha256": "sha256", "sha-256": "sha256",
    "1.3.14.3.2.26": "sha1", "sha1": "sha1", "sha-1": "sha1",
}
_SIGNATURE_METHODS = {
    "1.2.156.10197.1.501": "SM2-with-SM3", "1.2.156.10197.1.301.1": "SM2",
    "1.2.840.113549.1.1.11": "RSA-with-SHA256", "1.2.840.10045.4.3.2": "ECDSA-with-SHA256",
}
_ENTRY = re.compile(rb"\s*<(?:[\w.-]+:)?Signature[\s/>].*?(?:/>|</(?:[\w.-]+:)?Signature\s*>)", re.S)
_CLOSE = re.compile(rb"\s*</(?:[\w.-]+:)?Signatures\s*>")
_MAX_ID = re.compile(rb"(<(?:[\w.-]+:)?MaxSignId\s*>)\s*([^<]*?)\s*(</)")


@by_fields
@dataclass(frozen=True, slots=True)
class SealOptions:
    """Trust roots (the 电子印章 authorities a bureau trusts) and the signer certificates that bare
    SM2 values are verified with; both from configuration, nothing fetched."""

    roots: tuple[Certificate, ...] = ()
    signers: tuple[Certificate, ...] = ()


def inspect_signatures(box: Container, loc: str, options: SealOptions, problem: Callable[[str], None],
                       warn: Callable[[str, str], None]) -> list[SignatureRecord]:
    """Every signature of the list at `loc`. A list OFD.xml names but the container lacks is a
    warning (readers render the pages; there is no signature to check), not a quarantine."""
    list_name = box.resolve(loc, "OFD.xml")
    if list_name is None:
        warn(SIGNATURES_WARNING, f"{box.expected(loc, 'OFD.xml')}: signature list named in OFD.xml is not in the "
             "container (no signature to check)")
        return []
    try:
        listing = box.parse(list_name)
    except Broken as exc:
        problem(str(exc))
        return []
    entries = children(listing, "Signature")
    if len(entries) > box.limits.max_signatures:
        problem(f"{list_name}: lists {len(entries):,} signatures, above the limit of {box.limits.max_signatures:,}")
        return []
    records = []
    for n, sig in enumerate(entries):
        base = sig.get("BaseLoc") or ""
        name = box.resolve(base, list_name)
        kind = sig.get("Type") or "Seal"
        if name is None:
            records.append(SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID,
                                           note=f"{list_name}: signature {n + 1} {base!r} is not in the container"))
            continue
        try:
            records.append(_signature(box, name, kind, list_name, n, len(entries), options, problem))
        except Broken as exc:
            if box.spent > box.limits.max_decompressed_bytes:
                raise
            records.append(SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID, note=str(exc)))
    return records


def _signature(box: Container, name: str, kind: str, list_name: str, position: int, total: int,
               options: SealOptions, problem: Callable[[str], None]) -> SignatureRecord:
    xml = box.read_small(name, XML_PART_LIMIT)
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except etree.XMLSyntaxError as exc:
        return SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID,
                               note=f"{name}: not well-formed XML ({exc})")
    info = child(root, "SignedInfo")
    if info is None:
        return SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID, note=f"{name}: no SignedInfo")
    method = text(child(info, "SignatureMethod"))
    provider = child(info, "Provider")
    value_loc = text(child(root, "SignedValue"))
    value_name = box.resolve(value_loc, name) if value_loc else None
    verdict = Verdict()
    if value_name is None:
        verdict.failed.append(f"SignedValue {value_loc!r} is not in the container")
    else:
        value = box.read_small(value_name)
        verdict = verify_seal(value, xml, options.roots) if kind == "Seal" else \
            verify_sign(value, xml, options.signers, options.roots)
    seal_loc = text(child(child(info, "Seal"), "BaseLoc"))
    if seal_loc and verdict.eseal is not None:  # Seal.esl, where present, is the seal the signature holds
        seal_name = box.resolve(seal_loc, name)
        if seal_name is None:
            verdict.notes.append(f"Seal {seal_loc!r} named in SignedInfo is not in the container")
        elif box.read_small(seal_name) != verdict.eseal:
            verdict.failed.append(f"Seal.esl: {seal_name} differs from the seal inside the signed value")
    refs = child(info, "References")
    entries = children(refs, "Reference")
    if len(entries) > box.limits.max_references:
        problem(f"{name}: References lists {len(entries):,} files, above the limit of {box.limits.max_references:,}")
        entries = []
    check_method = (refs.get("CheckMethod") if refs is not None else None) or "1.2.156.10197.1.401"
    bad, intact = _references(box, name, entries, check_method, verdict, list_name, position, total)
    if not entries:
        bad.append("References lists no signed file")
    failed = [*(f"reference digest of {b}" for b in bad), *verdict.failed]
    if failed:
        state, why = SignatureState.INVALID, "failed: " + "; ".join(failed)
    elif verdict.unverified:
        state, why = SignatureState.UNVERIFIED, "not verified: " + "; ".join(verdict.unverified)
    else:
        state, why = SignatureState.VALID, (f"{len(entries)} signed file(s) match their digests; the signed value "
                                            "verifies")
    notes = "; ".join([why, *verdict.notes])
    return SignatureRecord(
        kind=f"OFD {kind}", state=state, intact=intact, method=_SIGNATURE_METHODS.get(method or "", method),
        signing_time=verdict.signing_time or text(child(info, "SignatureDateTime")),
        signer=verdict.signer_name or (provider.get("ProviderName") if provider is not None else None),
        issuer=verdict.issuer, timestamp=verdict.timestamp, trusted=verdict.trusted, references=len(entries),
        seal=verdict.seal, note=f"{name}: {notes}")


def _references(box: Container, name: str, entries: list[etree._Element], check_method: str, verdict: Verdict,
                list_name: str, position: int, total: int) -> tuple[list[str], bool | None]:
    """The references that fail (counted when repeated) and whether all matched (None: not judged)."""
    algorithm = _DIGESTS.get(check_method.strip().lower())
    if algorithm is None:
        verdict.unverified.append(f"CheckMethod {check_method!r} is not a digest guidang knows")
        return [], None
    prefix = b""
    if algorithm == SM3_WITH_Z:
        if verdict.signer is None or verdict.signer.public_key is None:
            verdict.unverified.append("CheckMethod 1.2.156.10197.1.401.2 (SM3 with Z) needs the signer's public key, "
                                      "which the signed value does not give")
            return [], None
        algorithm, prefix = "sm3", z_value(verdict.signer.public_key)
    bad: Counter[str] = Counter()
    for ref in entries:
        file_ref = ref.get("FileRef") or ""
        target = box.resolve(file_ref, name)
        try:
            expected = base64.b64decode(text(child(ref, "CheckValue")) or "", validate=True)
        except (binascii.Error, ValueError):
            expected = b""
        if target is None:
            bad[f"{file_ref!r}: not in the container"] += 1
            continue
        try:
            if expected == box.digest(target, algorithm, prefix):
                continue
        except Broken as exc:
            if box.spent > box.limits.max_decompressed_bytes:
                raise
            bad[str(exc)] += 1
            continue
        if target == list_name and position + 1 < total:
            if _earlier_list(box, list_name, position, algorithm, prefix, expected):
                verdict.notes.append(f"{list_name} differs only by the entries of the {total - position - 1} "
                                     "later seal(s); its earlier form matches")
            else:
                verdict.unverified.append(f"{list_name} was rewritten when a later seal was added and its earlier "
                                          "form cannot be rebuilt, so this seal's protection of it cannot be checked")
            continue
        bad[f"{target}: {(check_method if prefix else algorithm).upper()} differs from its CheckValue "
            "(the file was changed after signing)"] += 1
    return [m if n == 1 else f"{m} ({n} times)" for m, n in bad.items()], not bad


def _earlier_list(box: Container, list_name: str, position: int, algorithm: str, prefix: bytes,
                  expected: bytes) -> bool:
    import hashlib

    current = box.read_small(list_name, XML_PART_LIMIT)
    spans = list(_ENTRY.finditer(current))
    if len(spans) <= position + 1:
        return False
    head = current[:spans[position + 1].start()]
    cut = head + current[spans[-1].end():]
    candidates = [cut]
    ids = [int(m) for m in re.findall(rb'\bID="(\d+)"', b"".join(s.group() for s in spans[:position + 1]))]
    if ids:
        candidates.append(_MAX_ID.sub(lambda m: m.group(1) + str(max(ids)).encode() + m.group(3), cut, count=1))
    close = _CLOSE.search(current, spans[-1].end())
    if close is not None:  # producers that append their own MaxSignId after their entry
        candidates.append(head + current[close.start():])
    for candidate in candidates:
        h = hashlib.new(algorithm)
        h.update(prefix + candidate)
        if h.digest() == expected:
            return True
    return False
