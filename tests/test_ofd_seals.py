"""OFD signatures and electronic seals verified end to end (issue 31, item 2). Every key, certificate
and seal is made here (guidang_demo/seals.py signs in plain Python; guidang verifies with gmssl-pyx,
an independent SM2 implementation): GB/T 38540 V4 and GM/T 0031 V1 seals, CMS SignedData with and
without signed attributes, a bare SM2 value, references by SM3 and by SM3 with Z (…401.2), a signer
expired at the signing time, two seals, and each change caught by the check that names it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from guidang_demo.ofds import SM3_WITH_Z_OID, ofd_parts, seal_parts, zip_parts
from guidang_demo.seals import SealIdentity, make_identity, producer_name
from packager.ofd import OfdOptions, inspect_ofd
from packager.ofd_seals import SealOptions
from packager.sm2 import load_certificate, sm2_verify
from schemas.signature_info import SignatureRecord

SIGN_0 = "Doc_0/Signs/Sign_0"
VALUE = f"{SIGN_0}/SignedValue.dat"
PAGE = "Doc_0/Pages/Page_0/Content.xml"


@pytest.fixture(scope="module")
def office() -> SealIdentity:
    return make_identity("tests/office")


def sealed(identity: SealIdentity, **kwargs) -> dict[str, bytes]:
    parts = ofd_parts(["准予行政许可决定书", "许可期限 五年"], pages=2, sealed=True, seals=0)
    parts.update(seal_parts(parts, identity, **kwargs))
    return parts


def inspect(tmp_path: Path, parts: dict[str, bytes], options: OfdOptions | None = None) -> list[SignatureRecord]:
    path = tmp_path / "doc.ofd"
    path.write_bytes(zip_parts(parts))
    result = inspect_ofd(path, options)
    assert not result.problems, result.problems
    return list(result.signatures)


def only(records: list[SignatureRecord]) -> SignatureRecord:
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize("version", [4, 1])
def test_a_seal_of_either_version_is_valid_with_its_properties(tmp_path: Path, office: SealIdentity,
                                                                version: int) -> None:
    seal = only(inspect(tmp_path, sealed(office, version=version)))
    assert seal.state == "有效", seal.note
    # OFD.xml, Document.xml, PublicRes.xml, 2 pages, Signatures.xml
    assert seal.kind == "OFD Seal" and seal.intact is True and seal.references == 6
    assert "示范市行政审批局" in (seal.signer or "") and "guidang demo seal root" in (seal.issuer or "")
    assert seal.signing_time == "2026-01-01T08:00:00+00:00"
    assert seal.seal is not None and seal.seal.startswith("示范市行政审批局电子印章 (ID GD-SEAL-0001, type 1, "
                                                          "valid 2025-01-01 to 2035-01-01, maker ")
    assert seal.trusted is None  # no roots configured: trust is not judged


def test_a_raw_r_s_signature_value_verifies(tmp_path: Path, office: SealIdentity) -> None:
    assert only(inspect(tmp_path, sealed(office, raw_signature=True))).state == "有效"


def test_trust_is_judged_against_configured_roots(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    ours = OfdOptions(seals=SealOptions(roots=(load_certificate(office.root_cert),)))
    assert only(inspect(tmp_path, parts, ours)).trusted is True
    stranger = OfdOptions(seals=SealOptions(roots=(load_certificate(make_identity("tests/other").root_cert),)))
    seal = only(inspect(tmp_path, parts, stranger))
    assert seal.trusted is False and seal.state == "有效"  # untrusted is recorded, not invalid


def test_a_changed_page_is_caught_by_its_reference(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts[PAGE] = parts[PAGE].replace("五年".encode(), "十年".encode())
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and seal.intact is False
    assert f"reference digest of {PAGE}: SM3 differs from its CheckValue" in (seal.note or "")
    assert "signer signature" not in (seal.note or "")


def test_a_changed_signature_value_is_caught_by_the_signer_signature(tmp_path: Path, office: SealIdentity,
                                                                     capfd: pytest.CaptureFixture[str]) -> None:
    parts = sealed(office)
    parts[VALUE] = parts[VALUE][:-1] + bytes([parts[VALUE][-1] ^ 0x01])
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and seal.intact is True
    assert "failed: signer signature: does not verify over TBS_Sign" in (seal.note or "")
    assert "sm2_" not in capfd.readouterr().err  # GmSSL's trace lines ("…/sm2_sign.c:265:…") silenced


def test_a_changed_signing_time_is_caught_by_the_signer_signature(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts[VALUE] = parts[VALUE].replace(b"20260101080000Z", b"20260102080000Z")
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and "signer signature" in (seal.note or "") and "dataHash" not in (seal.note or "")
    # the time as Signature.xml states it is covered by dataHash
    parts = sealed(office)
    xml = f"{SIGN_0}/Signature.xml"
    parts[xml] = parts[xml].replace(b"20260101080000Z", b"20260102080000Z")
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and "dataHash: differs from the SM3 of Signature.xml" in (seal.note or "")


def test_a_changed_seal_is_caught_by_the_maker_signature(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts[VALUE] = parts[VALUE].replace("审批局电子印章".encode(), "审批厅电子印章".encode())
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and "maker signature: the seal maker's signature" in (seal.note or "")


def test_a_signer_certificate_expired_at_signing_time_is_invalid(tmp_path: Path) -> None:
    expired = make_identity("tests/expired", valid_from=datetime(2024, 1, 1, tzinfo=UTC), valid_days=365)
    seal = only(inspect(tmp_path, sealed(expired)))  # sealed 2026-01-01, certificate ended 2024-12-31
    assert seal.state == "无效"
    assert "certificate validity: the signer certificate was not valid at the signing time 2026-01-01 08:00:00Z" \
        in (seal.note or "")
    # an expired certificate that was valid when it sealed (the usual archived case) is fine
    old = make_identity("tests/old", valid_from=datetime(2025, 6, 1, tzinfo=UTC), valid_days=365)
    assert only(inspect(tmp_path, sealed(old))).state == "有效"


def test_sm3_with_z_references_are_verified(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office, check_method=SM3_WITH_Z_OID)
    assert only(inspect(tmp_path, parts)).state == "有效"
    parts[PAGE] = parts[PAGE] + b" "
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and f"{PAGE}: 1.2.156.10197.1.401.2 differs" in (seal.note or "")


def test_an_unknown_check_method_is_unverified_naming_it(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts[f"{SIGN_0}/Signature.xml"] = parts[f"{SIGN_0}/Signature.xml"].replace(
        b'CheckMethod="1.2.156.10197.1.401"', b'CheckMethod="1.2.3.4.5"')
    seal = only(inspect(tmp_path, parts))
    # the signed value still binds Signature.xml (dataHash), so only the reference check is open
    assert "dataHash" in (seal.note or "")  # the edit above changed Signature.xml itself
    # rebuilt with the unknown method from the start: 存在未验证 naming it
    parts = sealed(office, check_method="1.2.3.4.5")
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "存在未验证" and "CheckMethod '1.2.3.4.5' is not a digest guidang knows" in (seal.note or "")


@pytest.mark.parametrize("signed_attributes", [True, False])
def test_cms_sign_with_and_without_signed_attributes(tmp_path: Path, office: SealIdentity,
                                                     signed_attributes: bool) -> None:
    parts = sealed(office, kind="Sign", signed_attributes=signed_attributes)
    sign = only(inspect(tmp_path, parts))
    assert sign.kind == "OFD Sign" and sign.state == "有效", sign.note
    assert "示范市行政审批局" in (sign.signer or "")
    xml = f"{SIGN_0}/Signature.xml"
    parts[xml] = parts[xml].replace(b"guidang demo seal service", b"guidang demo seal servicf")
    sign = only(inspect(tmp_path, parts))
    assert sign.state == "无效"
    assert ("messageDigest" if signed_attributes else "content: the signed content") in (sign.note or "")


def test_a_bare_sm2_value_needs_a_configured_certificate(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office, kind="Sign", bare=True)
    sign = only(inspect(tmp_path, parts))
    assert sign.state == "存在未验证" and "no certificate in the file and none configured" in (sign.note or "")
    configured = OfdOptions(seals=SealOptions(signers=(load_certificate(office.signer_cert),)))
    assert only(inspect(tmp_path, parts, configured)).state == "有效"
    other = OfdOptions(seals=SealOptions(signers=(load_certificate(make_identity("tests/x").signer_cert),)))
    assert only(inspect(tmp_path, parts, other)).state == "无效"


def test_two_seals_where_the_second_appended_its_entry(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts.update(seal_parts(parts, make_identity("tests/second", office="示范市市场监督管理局")))
    first, second = inspect(tmp_path, parts)
    assert first.state == "有效" and second.state == "有效", (first.note, second.note)
    assert "differs only by the entries of the 1 later seal(s)" in (first.note or "")
    assert "市场监督管理局" in (second.signer or "")


def test_two_seals_where_the_second_appended_its_entry_and_its_own_max_id(tmp_path: Path,
                                                                          office: SealIdentity) -> None:
    """How one real producer adds a seal: <Signature/><MaxSignId/> appended after the first pair."""
    parts = sealed(office)
    parts.update(seal_parts(parts, make_identity("tests/second"), append_max_id=True))
    assert parts["Doc_0/Signs/Signatures.xml"].count(b"<ofd:MaxSignId>") == 2
    first, second = inspect(tmp_path, parts)
    assert first.state == "有效" and second.state == "有效", first.note


def test_a_change_after_two_seals_is_still_caught(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts.update(seal_parts(parts, make_identity("tests/second")))
    parts[PAGE] = parts[PAGE].replace("五年".encode(), "十年".encode())
    first, second = inspect(tmp_path, parts)
    assert first.state == "无效" and second.state == "无效"
    assert f"reference digest of {PAGE}" in (first.note or "") and f"reference digest of {PAGE}" in (second.note or "")


def test_a_list_rewritten_beyond_an_appended_entry_is_not_valid(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office)
    parts.update(seal_parts(parts, make_identity("tests/second")))
    listing = "Doc_0/Signs/Signatures.xml"
    parts[listing] = parts[listing].replace(b'Type="Seal" BaseLoc="Sign_0', b'Type="Seal"  BaseLoc="Sign_0')
    first = inspect(tmp_path, parts)[0]
    assert first.state == "存在未验证"
    assert "was rewritten when a later seal was added and its earlier form cannot be rebuilt" in (first.note or "")


def test_a_signer_certificate_strict_parsers_refuse_is_read_leniently(tmp_path: Path) -> None:
    from asn1crypto import x509

    odd = make_identity("tests/odd", signer_subject=producer_name("示范市行政审批局", "印章@例子.cn"))
    with pytest.raises(ValueError):
        x509.Certificate.load(odd.signer_cert).subject.native  # noqa: B018  (asn1crypto refuses it)
    seal = only(inspect(tmp_path, sealed(odd)))
    assert seal.state == "有效" and seal.signer == "CN, 示范市行政审批局, 印章@例子.cn, uid-0001"


def test_the_sm2_library_agrees_on_a_library_made_signature() -> None:
    """The verifier is not only consistent with the demo's signer: gmssl-pyx signs, guidang verifies."""
    import gmssl_pyx

    public, private = gmssl_pyx.sm2_key_generate()
    signature = gmssl_pyx.sm2_sign(private, public, b"Signature.xml bytes", b"1234567812345678")
    assert sm2_verify(public, b"Signature.xml bytes", signature)
    assert not sm2_verify(public, b"Signature.xml byteS", signature)


def test_a_seal_file_must_be_the_seal_the_signature_holds(tmp_path: Path, office: SealIdentity) -> None:
    parts = sealed(office, seal_file=True)
    assert only(inspect(tmp_path, parts)).state == "有效"
    parts[f"{SIGN_0}/Seal.esl"] = make_identity("tests/other-seal").signer_cert  # another seal's bytes
    seal = only(inspect(tmp_path, parts))
    assert seal.state == "无效" and f"Seal.esl: {SIGN_0}/Seal.esl differs from the seal inside" in (seal.note or "")


def test_a_seal_time_stamp_is_recorded(tmp_path: Path, office: SealIdentity) -> None:
    import asyncio
    import hashlib

    from pyhanko.sign import timestamps

    from tests.content_support import make_certificate

    tsa_cert, tsa_key, _ = make_certificate("Test TSA", tsa=True)
    token = asyncio.run(timestamps.DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key).async_timestamp(
        hashlib.sha256(b"signature").digest(), "sha256"))
    seal = only(inspect(tmp_path, sealed(office, timestamp=token.dump())))
    assert seal.state == "有效" and seal.timestamp is not None and seal.timestamp[:2] == "20", seal.timestamp
