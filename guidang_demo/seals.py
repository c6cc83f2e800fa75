"""Real electronic seals (电子印章) for the demo world and the tests: generated SM2 key pairs, a root
authority, a seal maker (制章者) and a signer certificate, and the SignedValue.dat of an OFD
signature as sealing systems write it: SES_Signature of GB/T 38540 (V4) or GM/T 0031 (V1), a CMS
SignedData with SM2 (with or without signed attributes), or a bare SM2 value.

No stand-in bytes: every signature here is an SM2 signature that guidang verifies (with gmssl-pyx) as
it would a producer's, so the world's licences are archived 有效 and a test that changes one byte
sees the right check fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from guidang_demo import sm2_math

SM2_SIGN = "1.2.156.10197.1.501"
SM2_CURVE = "1.2.156.10197.1.301"
SM3 = "1.2.156.10197.1.401"
ID = b"1234567812345678"


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def integer(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x02, raw)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def bits(b: bytes) -> bytes:
    return tlv(0x03, b"\x00" + b)


def gtime(t: datetime) -> bytes:
    return tlv(0x18, t.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode())


def utctime(t: datetime) -> bytes:
    return tlv(0x17, t.astimezone(UTC).strftime("%y%m%d%H%M%SZ").encode())


def sm2_sign(private: bytes, public: bytes, message: bytes) -> bytes:
    """SM2-with-SM3, default signer ID, DER {r, s}, with a deterministic nonce (guidang_demo/sm2_math.py)."""
    return sm2_math.sign(private, public, message)


def raw_rs(signature: bytes) -> bytes:
    """DER {r, s} as the raw 64-byte r‖s one producer writes."""
    from asn1crypto.algos import DSASignature

    value = DSASignature.load(signature).native
    r, s = value["r"], value["s"]
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _name(cn: str) -> bytes:
    from asn1crypto import x509

    return x509.Name.build({"country_name": "CN", "organization_name": "guidang demo", "common_name": cn}).dump()


def producer_name(cn: str, email: str) -> bytes:
    """A subject as some sealing systems write it and strict X.509 parsers refuse: a non-ASCII e-mail
    in an IA5String and an x500UniqueIdentifier given as a UTF8String."""
    def rdn(dotted: str, tag: int, value: str) -> bytes:
        return tlv(0x31, seq(oid(dotted), tlv(tag, value.encode())))
    return seq(rdn("2.5.4.6", 0x13, "CN"), rdn("2.5.4.3", 0x0C, cn), rdn("1.2.840.113549.1.9.1", 0x16, email),
               rdn("2.5.4.45", 0x0C, "uid-0001"))


def certificate(cn: str, public: bytes, issuer_cn: str, issuer_private: bytes, issuer_public: bytes,
                not_before: datetime, not_after: datetime, serial: int, *, subject: bytes | None = None) -> bytes:
    """An X.509 v3 certificate for an SM2 key, signed SM2-with-SM3 by the issuer (`subject`: the
    subject Name's DER, instead of one built from `cn`)."""
    spki = seq(seq(oid("1.2.840.10045.2.1"), oid(SM2_CURVE)), bits(b"\x04" + public))
    tbs = seq(tlv(0xA0, integer(2)), integer(serial), seq(oid(SM2_SIGN)), _name(issuer_cn),
              seq(utctime(not_before), utctime(not_after)), subject or _name(cn), spki)
    return seq(tbs, seq(oid(SM2_SIGN)), bits(sm2_sign(issuer_private, issuer_public, tbs)))


@dataclass(frozen=True)
class SealIdentity:
    """A root authority, the seal maker it certifies and a signer (the issuing office's key)."""

    root_cert: bytes
    maker_public: bytes
    maker_private: bytes
    maker_cert: bytes
    signer_public: bytes
    signer_private: bytes
    signer_cert: bytes
    seal_name: str = "guidang 示范市行政审批局电子印章"


def make_identity(seed: str = "guidang demo", *, valid_from: datetime | None = None, valid_days: int = 3650,
                  office: str = "示范市行政审批局", signer_subject: bytes | None = None) -> SealIdentity:
    """Keys and certificates derived from `seed` (the same bytes for the same seed); the signer's
    certificate is valid `valid_days` from `valid_from`."""
    start = valid_from or datetime(2025, 1, 1, tzinfo=UTC)
    root_pub, root_priv = sm2_math.keypair(f"{seed}/root")
    maker_pub, maker_priv = sm2_math.keypair(f"{seed}/maker")
    signer_pub, signer_priv = sm2_math.keypair(f"{seed}/signer/{office}")
    long_ago, far = datetime(2020, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, tzinfo=UTC)
    root = certificate("guidang demo seal root", root_pub, "guidang demo seal root", root_priv, root_pub,
                       long_ago, far, 1)
    maker = certificate("guidang demo seal maker", maker_pub, "guidang demo seal root", root_priv, root_pub,
                        long_ago, far, 2)
    signer = certificate(office, signer_pub, "guidang demo seal root", root_priv, root_pub, start,
                         start + timedelta(days=valid_days), 3, subject=signer_subject)
    return SealIdentity(root, maker_pub, maker_priv, maker, signer_pub, signer_priv, signer,
                        seal_name=f"{office}电子印章")


def z_prefix(public: bytes) -> bytes:
    """Z_A of the signer (GM/T 0009), what CheckMethod 1.2.156.10197.1.401.2 digests before a file."""
    return sm2_math.z_value(public)


def eseal_v4(identity: SealIdentity) -> bytes:
    """The office's GB/T 38540 seal (SESeal), as the seal authority made it: the maker signs
    DER(SES_SealInfo). The same bytes every time (the nonce is deterministic), as Seal.esl holds it."""
    i = identity
    prop = seq(integer(1), tlv(0x0C, i.seal_name.encode()), integer(1), seq(tlv(0x04, i.signer_cert)),
               gtime(datetime(2025, 1, 1, tzinfo=UTC)), gtime(datetime(2025, 1, 1, tzinfo=UTC)),
               gtime(datetime(2035, 1, 1, tzinfo=UTC)))
    picture = seq(tlv(0x16, b"PNG"), tlv(0x04, _PNG), integer(40), integer(40))
    info = seq(seq(tlv(0x16, b"ES"), integer(4), tlv(0x16, b"guidang")), tlv(0x16, b"GD-SEAL-0001"), prop, picture)
    return seq(info, tlv(0x04, i.maker_cert), oid(SM2_SIGN), bits(sm2_sign(i.maker_private, i.maker_public, info)))


def ses_v4(identity: SealIdentity, signature_xml: bytes, path: str, when: datetime, *,
           raw_signature: bool = False, timestamp: bytes | None = None) -> bytes:
    """GB/T 38540 SES_Signature: the signer signs TBS_Sign, which holds the seal, the time and dataHash."""
    i = identity
    tbs = seq(integer(4), eseal_v4(identity), gtime(when), bits(hashlib.new("sm3", signature_xml).digest()),
              tlv(0x16, path.encode()))
    sig = sm2_sign(i.signer_private, i.signer_public, tbs)
    stamp = tlv(0x80, b"\x00" + timestamp) if timestamp else b""  # timeStamp [0] IMPLICIT BIT STRING
    return seq(tbs, tlv(0x04, i.signer_cert), oid(SM2_SIGN), bits(raw_rs(sig) if raw_signature else sig), stamp)


def ses_v1(identity: SealIdentity, signature_xml: bytes, path: str, when: datetime) -> bytes:
    """GM/T 0031 SES_Signature: the maker signs SEQUENCE{sealInfo, cert, signAlgID}; the signer TBS_Sign."""
    i = identity
    prop = seq(integer(1), tlv(0x0C, i.seal_name.encode()), seq(tlv(0x04, i.signer_cert)),
               utctime(datetime(2025, 1, 1, tzinfo=UTC)), utctime(datetime(2025, 1, 1, tzinfo=UTC)),
               utctime(datetime(2035, 1, 1, tzinfo=UTC)))
    picture = seq(tlv(0x16, b"PNG"), tlv(0x04, _PNG), integer(40), integer(40))
    info = seq(seq(tlv(0x16, b"ES"), integer(1), tlv(0x16, b"guidang")), tlv(0x16, b"GD-SEAL-0001"), prop, picture)
    maker_signed = seq(info, tlv(0x04, i.maker_cert), oid(SM2_SIGN))
    sign_info = seq(tlv(0x04, i.maker_cert), oid(SM2_SIGN),
                    bits(sm2_sign(i.maker_private, i.maker_public, maker_signed)))
    tbs = seq(integer(1), seq(info, sign_info), bits(when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode()),
              bits(hashlib.new("sm3", signature_xml).digest()), tlv(0x16, path.encode()),
              tlv(0x04, i.signer_cert), oid(SM2_SIGN))
    return seq(tbs, bits(sm2_sign(i.signer_private, i.signer_public, tbs)))


def cms_sign(identity: SealIdentity, signature_xml: bytes, when: datetime, *, signed_attributes: bool) -> bytes:
    """CMS SignedData with SM2 (1.2.156.10197.6.1.4.2.2): with signed attributes (messageDigest =
    SM3(Signature.xml)) or without (the content is SM3(Signature.xml), signed directly)."""
    # pyHanko adds CMS attribute and content type names to asn1crypto's tables when imported, and
    # asn1crypto freezes its reverse tables at first use: load it first, or a later PDF signature fails.
    import pyhanko.pdf_utils.reader
    import pyhanko.sign.general  # noqa: F401
    from asn1crypto import cms, x509

    i = identity
    digest = hashlib.new("sm3", signature_xml).digest()
    cert = x509.Certificate.load(i.signer_cert)
    info: dict = {
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": cert.issuer, "serial_number": cert.serial_number})}),
        "digest_algorithm": {"algorithm": SM3}, "signature_algorithm": {"algorithm": SM2_SIGN},
    }
    if signed_attributes:
        attrs = cms.CMSAttributes([
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        ])
        info["signed_attrs"] = attrs
        info["signature"] = sm2_sign(i.signer_private, i.signer_public, attrs.dump())
    else:
        info["signature"] = sm2_sign(i.signer_private, i.signer_public, digest)
    signed = cms.SignedData({
        "version": "v1", "digest_algorithms": [{"algorithm": SM3}],
        "encap_content_info": {"content_type": "data", "content": None if signed_attributes else digest},
        "certificates": [cert], "signer_infos": [info],
    })
    return seq(oid("1.2.156.10197.6.1.4.2.2"), tlv(0xA0, signed.dump()))


# A 1x1 PNG: the seal's picture (SES_ESPictrueInfo), which guidang records but does not judge.
_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                     "1f15c4890000000d49444154789c6360f8cf000003010100c9fe92ef0000000049454e44ae426082")
