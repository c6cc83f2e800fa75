"""SM2 (GB/T 32918) verification, the DER reading seals need, and X.509 certificates read leniently.

The SM2 arithmetic is gmssl-pyx's (GmSSL bindings, manylinux wheels): verification with a signer ID
(SM2-with-SM3 hashes Z_A, derived from the key and the ID, before the message) and of a bare SM3
digest. GmSSL prints trace lines on stderr for every failed verification; a failure is an
ordinary outcome here (a tampered seal), so file descriptor 2 is pointed at /dev/null around the call.

Certificates of real seal systems do not always satisfy a strict X.509 parser (a non-ASCII e-mail
in an IA5String, a name attribute in the wrong string type), so a certificate is read with a small
DER walker for exactly the fields judged here: the public key, the validity, the names (rendered by
asn1crypto when it can, raw otherwise) and the issuer's signature over the TBS bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

SM2_ID = b"1234567812345678"  # GM/T 0009 default signer ID
SM2_SIGN_OIDS = frozenset({"1.2.156.10197.1.501", "1.2.156.10197.1.301.1", "1.2.156.10197.1.301"})
_CURVE = bytes.fromhex(  # a, b, xG, yG of the SM2 curve, as Z_A takes them
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
_FD_LOCK = threading.Lock()


class DerError(ValueError):
    """Bytes that are not the DER structure expected; the message says where."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int  # the identifier octet (0x30 SEQUENCE, 0x04 OCTET STRING, 0xA0 [0] ...)
    start: int  # offset of the identifier in `data`
    body: int  # offset of the contents
    end: int
    data: bytes

    @property
    def raw(self) -> bytes:
        """The whole TLV exactly as stored (what a signature over it covers)."""
        return self.data[self.start:self.end]

    @property
    def value(self) -> bytes:
        return self.data[self.body:self.end]

    def items(self) -> list[Tlv]:
        out, pos = [], self.body
        while pos < self.end:
            item = read_tlv(self.data, pos, self.end)
            out.append(item)
            pos = item.end
        return out


def read_tlv(data: bytes, pos: int = 0, limit: int | None = None) -> Tlv:
    limit = len(data) if limit is None else limit
    if pos + 2 > limit:
        raise DerError(f"DER cut short at byte {pos}")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise DerError(f"high tag number at byte {pos} is not used by seals")
    body = pos + 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or body + n > limit:
            raise DerError(f"bad DER length at byte {pos}")
        length = int.from_bytes(data[body:body + n], "big")
        body += n
    else:
        length = first
    if body + length > limit:
        raise DerError(f"DER element at byte {pos} runs past its container")
    return Tlv(tag, pos, body, body + length, data)


def oid(tlv: Tlv) -> str:
    if tlv.tag != 0x06 or not tlv.value:
        raise DerError("expected an OBJECT IDENTIFIER")
    v = tlv.value
    arcs, n = [], 0
    for b in v:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def bit_string(tlv: Tlv) -> bytes:
    if tlv.tag != 0x03 or not tlv.value:
        raise DerError("expected a BIT STRING")
    return tlv.value[1:]


def der_time(tlv: Tlv) -> datetime:
    """UTCTime, GeneralizedTime, or (GM/T 0031 v1 timeInfo) a BIT/OCTET STRING holding one as text."""
    raw = tlv.value[1:] if tlv.tag == 0x03 else tlv.value
    s = raw.decode("ascii", "replace").strip().rstrip("Z").replace("-", "").replace(":", "").replace("T", "")
    s = s.split(".")[0].split("+")[0]
    if tlv.tag == 0x17 or len(s) == 12:
        s = ("19" if int(s[:2]) >= 50 else "20") + s
    try:
        return datetime.strptime(s[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise DerError(f"time {raw[:32]!r} is not readable") from exc


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    with _FD_LOCK:
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def signature_der(value: bytes) -> bytes:
    """An SM2 signature as DER SEQUENCE{r, s}; a raw 64-byte r‖s (one producer writes it so) converted."""
    if len(value) == 64 and value[0] != 0x30:
        def integer(b: bytes) -> bytes:
            b = b.lstrip(b"\x00") or b"\x00"
            b = b"\x00" + b if b[0] & 0x80 else b
            return bytes([0x02, len(b)]) + b
        body = integer(value[:32]) + integer(value[32:])
        return bytes([0x30, len(body)]) + body
    return value


def sm2_verify(public_key: bytes, message: bytes, signature: bytes, *, digest: bool = False) -> bool:
    """SM2-with-SM3 with the default ID over `message`, or (digest=True) over a given SM3 digest e."""
    import gmssl_pyx

    try:
        with _quiet_stderr():
            if digest:
                return bool(gmssl_pyx.sm2_verify_sm3_digest(public_key, message, signature_der(signature)))
            return bool(gmssl_pyx.sm2_verify(public_key, message, signature_der(signature), SM2_ID))
    except (gmssl_pyx.GmsslInnerError, ValueError, TypeError):
        return False


def z_value(public_key: bytes) -> bytes:
    """Z_A of GM/T 0009: SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), what CheckMethod …401.2 prefixes."""
    entl = (len(SM2_ID) * 8).to_bytes(2, "big")
    return hashlib.new("sm3", entl + SM2_ID + _CURVE + public_key).digest()


@dataclass(frozen=True, slots=True)
class Certificate:
    der: bytes
    tbs: bytes
    signature_algorithm: str
    signature: bytes
    subject: str
    issuer: str
    subject_raw: bytes
    issuer_raw: bytes
    not_before: datetime
    not_after: datetime
    public_key: bytes | None  # 64 bytes X‖Y for an SM2/EC key, else None
    serial: int

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after


def _name(tlv: Tlv) -> str:
    try:
        from asn1crypto import x509

        return str(x509.Name.load(tlv.raw).human_friendly)
    except Exception:  # a producer's name asn1crypto refuses: its printable values, in order
        values = []
        for rdn in tlv.items():
            for atv in rdn.items():
                parts = atv.items()
                if len(parts) == 2:
                    values.append(parts[1].value.decode("utf-8", "replace"))
        return ", ".join(values)


def load_certificate(der: bytes) -> Certificate:
    """The fields a seal check needs; raises DerError naming what is missing."""
    cert = read_tlv(der)
    parts = cert.items()
    if cert.tag != 0x30 or len(parts) < 3:
        raise DerError("a certificate is a SEQUENCE of TBSCertificate, algorithm and signature")
    tbs = parts[0].items()
    if tbs and tbs[0].tag == 0xA0:  # [0] version
        tbs = tbs[1:]
    if len(tbs) < 6:
        raise DerError("TBSCertificate lacks serial, algorithm, issuer, validity, subject or key")
    serial, _, issuer, validity, subject, spki = tbs[:6]
    times = validity.items()
    key_parts = spki.items()
    key = bit_string(key_parts[1]) if len(key_parts) == 2 else b""
    return Certificate(
        der=cert.raw, tbs=parts[0].raw, signature_algorithm=oid(parts[1].items()[0]),
        signature=bit_string(parts[2]), subject=_name(subject), issuer=_name(issuer),
        subject_raw=subject.raw, issuer_raw=issuer.raw, not_before=der_time(times[0]),
        not_after=der_time(times[1]), public_key=key[1:] if len(key) == 65 and key[0] == 4 else None,
        serial=int.from_bytes(serial.value, "big", signed=True))


def load_certificates(data: bytes) -> list[Certificate]:
    """Every certificate of a PEM file (several allowed) or one DER certificate."""
    import base64
    import re

    if b"-----BEGIN" in data:
        blocks = re.findall(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", data, re.S)
        return [load_certificate(base64.b64decode(b"".join(b.split()))) for b in blocks]
    return [load_certificate(data)]


def issued_by(cert: Certificate, issuer: Certificate) -> bool:
    return (cert.issuer_raw == issuer.subject_raw and issuer.public_key is not None
            and sm2_verify(issuer.public_key, cert.tbs, cert.signature))


def chains_to(cert: Certificate, roots: tuple[Certificate, ...], depth: int = 4) -> bool:
    """Whether `cert` is a root or is issued, through the configured certificates, by one."""
    if any(cert.der == r.der for r in roots):
        return True
    if depth == 0:
        return False
    return any(issued_by(cert, r) and (r.issuer_raw == r.subject_raw or chains_to(r, roots, depth - 1))
               for r in roots if r.der != cert.der)
