"""PDF signatures judged whole (issue 31, item 3), with pyHanko's own status: coverage level,
modification level and DocMDP, cryptographic constraints. Every PDF is signed here with a self-made
RSA key and then changed the way the edge cases of real files are (tests/pdf_sign_support.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from guidang_demo.seals import make_identity
from packager.signatures import TrustRoots, inspect_pdf_signatures
from schemas.signature_info import SignatureRecord
from tests.content_support import make_certificate
from tests.pdf_sign_support import fill_field, form_pdf, resign, shadow_appearance, sm2_signer
from tests.test_content import build_with, file_entry, quarantined
from tests.test_packager_support import doc


@pytest.fixture(scope="module")
def signer() -> signers.SimpleSigner:
    cert, key, _ = make_certificate()
    return signers.SimpleSigner(signing_cert=cert, signing_key=key,
                                cert_registry=SimpleCertificateStore.from_certs([cert]))


def sign(data: bytes, signer: signers.SimpleSigner, **meta: object) -> bytes:
    return signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)),
                            signers.PdfSignatureMetadata(field_name="Signature1", **meta), signer=signer).getvalue()


def judged(tmp_path: Path, data: bytes) -> SignatureRecord:
    path = tmp_path / "signed.pdf"
    path.write_bytes(data)
    found = inspect_pdf_signatures(path)
    assert found.error is None and len(found.signatures) == 1
    return found.signatures[0]


def test_a_signature_covering_its_file_is_valid(tmp_path: Path, signer) -> None:
    record = judged(tmp_path, sign(form_pdf(), signer))
    assert (record.state, record.coverage, record.modification) == ("有效", "ENTIRE_FILE", "NONE; DocMDP permits it")


def test_byte_ranges_leaving_a_gap_are_invalid(tmp_path: Path, signer) -> None:
    signed = sign(form_pdf(), signer)
    assert judged(tmp_path, resign(signed, signer)).state == "有效"  # the re-signing itself is sound
    record = judged(tmp_path, resign(signed, signer, gap=16))
    assert record.state == "无效" and record.intact is True and record.coverage == "UNCLEAR"
    assert "nonstandard coverage (UNCLEAR)" in (record.note or "")


def test_an_uncovered_tail_of_the_revision_is_invalid(tmp_path: Path, signer) -> None:
    record = judged(tmp_path, resign(sign(form_pdf(), signer), signer, tail=20))
    assert record.state == "无效" and record.coverage == "CONTIGUOUS_BLOCK_FROM_START"
    assert "nonstandard coverage (CONTIGUOUS_BLOCK_FROM_START)" in (record.note or "")


def test_a_permitted_form_fill_after_signing_stays_valid(tmp_path: Path, signer) -> None:
    record = judged(tmp_path, fill_field(sign(form_pdf(), signer), "ten years"))
    assert record.state == "有效" and record.coverage == "ENTIRE_REVISION"
    assert record.modification == "FORM_FILLING; DocMDP permits it"
    assert "later changes are FORM_FILLING, which it permits" in (record.note or "")


def test_a_form_fill_a_certification_forbids_is_invalid(tmp_path: Path, signer) -> None:
    certified = sign(form_pdf(), signer, certify=True, docmdp_permissions=fields.MDPPerm.NO_CHANGES)
    record = judged(tmp_path, fill_field(certified, "ten years"))
    assert record.state == "无效" and record.modification == "FORM_FILLING; DocMDP forbids it"
    assert "changed after signing beyond what the signature permits (modification level FORM_FILLING)" in record.note


def test_the_signed_appearance_overridden_after_signing_is_invalid(tmp_path: Path, signer) -> None:
    """A shadow change: the signature's own appearance stream, used by the signed revision, replaced
    in place by a later update; the signed bytes are intact, what the reader shows is not."""
    w = IncrementalPdfFileWriter(io.BytesIO(form_pdf()))
    fields.append_signature_field(w, fields.SigFieldSpec("Signature1", box=(300, 700, 500, 760)))
    out = io.BytesIO()
    w.write(out)
    signed = sign(out.getvalue(), signer)
    record = judged(tmp_path, shadow_appearance(signed, "forged", field=1))
    assert record.state == "无效" and record.intact is True and record.modification == "OTHER; DocMDP forbids it"
    assert "modification level OTHER: There are unexplained xrefs" in (record.note or "")


def test_a_disallowed_digest_is_unverified_naming_it(tmp_path: Path, signer) -> None:
    record = judged(tmp_path, sign(form_pdf(), signer, md_algorithm="sha1"))
    assert record.state == "存在未验证"
    assert "cryptographic constraint failure (CRYPTO_CONSTRAINTS_FAILURE): the algorithm sha1_rsa with sha1" in \
        (record.note or "")


def test_an_invalid_pdf_signature_quarantines_and_a_valid_one_is_recorded(tmp_path: Path, signer) -> None:
    signed = sign(form_pdf(), signer)
    findings = quarantined(tmp_path, [doc("结果材料", "决定书.pdf", resign(signed, signer, gap=16))])
    assert [f.code for f in findings] == ["Q-SIGNATURE-INVALID"] and "nonstandard coverage" in findings[0].message
    pkg = build_with(tmp_path / "ok", [doc("结果材料", "决定书.pdf", fill_field(signed, "ten years"))])
    sig = file_entry(pkg.folder, "决定书.pdf").find("签名信息/签名")
    assert sig.findtext("状态") == "有效" and sig.findtext("签名后修改") == "FORM_FILLING; DocMDP permits it"


def test_an_sm2_pdf_signature_is_verified_and_judged_alike(tmp_path: Path) -> None:
    office = make_identity("tests/pdf-sm2")
    signed = sign(form_pdf(), sm2_signer(office), md_algorithm="sm3")
    record = judged(tmp_path, signed)
    assert (record.state, record.method, record.coverage) == ("有效", "SM2-with-SM3", "ENTIRE_FILE"), record.note
    assert "示范市行政审批局" in (record.signer or "")
    assert judged(tmp_path, fill_field(signed, "ten years")).state == "有效"  # a permitted fill
    at = signed.index(b"/CreationDate (D:2026") + len(b"/CreationDate (D:")
    changed = judged(tmp_path, signed[:at] + b"2027" + signed[at + 4:])
    assert changed.state == "无效" and changed.intact is False
    assert "signed byte ranges were changed" in (changed.note or "")
    # trust: against SM2 roots configured like any other
    (tmp_path / "root.der").write_bytes(office.root_cert)
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    roots = TrustRoots(paths=(str(tmp_path / "root.der"),))
    assert inspect_pdf_signatures(path, roots).signatures[0].trusted is True


def test_an_sm2_pdf_signed_after_its_certificate_expired_is_invalid(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    lapsed = make_identity("tests/pdf-lapsed", valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_days=365)
    record = judged(tmp_path, sign(form_pdf(), sm2_signer(lapsed), md_algorithm="sm3"))
    assert record.state == "无效" and "certificate validity: the signer certificate was not valid at the signing " \
        "time" in (record.note or "")


def test_a_document_time_stamp_after_signing_is_judged_as_one(tmp_path: Path, signer) -> None:
    """PAdES-LTA: a document time-stamp (/DocTimeStamp) is validated as a time-stamp, not refused as
    "not a /Sig", and the signature before it stays valid (LTA updates are permitted)."""
    from pyhanko.sign import timestamps

    tsa_cert, tsa_key, _ = make_certificate("Test TSA", tsa=True)
    stamper = signers.PdfTimeStamper(timestamps.DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key))
    out = stamper.timestamp_pdf(IncrementalPdfFileWriter(io.BytesIO(sign(form_pdf(), signer))), "sha256")
    path = tmp_path / "lta.pdf"
    path.write_bytes(out.getvalue())
    first, stamp = inspect_pdf_signatures(path).signatures
    assert first.state == "有效" and first.modification == "LTA_UPDATES; DocMDP permits it", first.note
    assert stamp.kind == "PDF document time-stamp" and stamp.state == "有效" and stamp.timestamp, stamp.note
