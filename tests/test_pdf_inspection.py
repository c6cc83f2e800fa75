"""Issue 32 item 4 and issue 28 item 6: encrypted PDFs told apart (restricted, password, public-key
handler), pypdf's warnings counted per document and reported once, a PDF pypdf cannot parse entirely
is a finding, and content-stream syntax errors are named as such. Every PDF is made here."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from guidang_demo.pdfs import make_pdf
from packager import QuarantineError
from packager.pdf import inspect_pdf
from packager.stage import stage_matter
from tests.test_packager_support import appraisal, doc, finalize, good_documents, make_matter, opener


def encryption_certificate():
    """A self-signed RSA certificate whose key may encipher keys (public-key PDF encryption)."""
    from datetime import UTC, datetime, timedelta

    from asn1crypto import x509 as ax509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "档案馆 接收")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=365))
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def public_key_encrypted() -> bytes:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(make_pdf(["for the archive only"]))))
    writer.encrypt_pubkey([encryption_certificate()])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def password_encrypted(user: str, permissions: int = -1) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["restricted"]))))
    writer.encrypt(user_password=user, owner_password="owner-secret", algorithm="AES-128",
                   permissions_flag=permissions)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def deeply_nested(depth: int = 100_000) -> bytes:
    """A good PDF with an incremental update adding one object of `depth` nested dictionaries."""
    data = make_pdf(["deep"])
    size = int(re.findall(rb"/Size (\d+)", data)[-1])
    root = re.findall(rb"/Root (\d+) 0 R", data)[-1]
    prev = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    obj = b"%d 0 obj\n" % size + b"<< /A " * depth + b"1" + b" >>" * depth + b"\nendobj\n"
    xref = len(data) + len(obj)
    tail = (b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \ntrailer\n"
            b"<< /Size %d /Root %s 0 R /Prev %d /Deep %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, len(data), size + 1, root, prev, size, xref))
    return data + obj + tail


def broken_content_stream() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["hello"]))))
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 712 Td (a string that never ends Tj ET\n<< /A ")
    writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class RootLog(logging.Handler):
    """What reaches the root logger: the night's log, whatever handler writes it. (pytest's caplog
    attaches itself to non-propagating loggers too, so it would see pypdf's suppressed lines.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_log():
    handler = RootLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


def inspect(tmp_path: Path, data: bytes):
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    return inspect_pdf(path)


def test_three_kinds_of_encryption_are_told_apart(tmp_path: Path) -> None:
    no_print_no_copy = -1 & ~(1 << 2) & ~(1 << 4)
    restricted = inspect(tmp_path, password_encrypted("", no_print_no_copy))
    assert restricted.encrypted and not restricted.readable
    assert restricted.encryption == ("it opens without a password but restricts permissions "
                                     "(withheld: printing, copying text)")
    needs = inspect(tmp_path, password_encrypted("user-secret"))
    assert needs.encryption == "a password is needed to open it (Standard security handler)"
    public = inspect(tmp_path, public_key_encrypted())
    assert public.encrypted and public.error is None  # not "broken": encrypted, and for whom
    assert public.encryption.startswith("encrypted for certificates (public-key (certificate) security handler)")


@pytest.mark.parametrize("make,says", [
    (lambda: password_encrypted(""), "opens without a password but restricts permissions"),
    (lambda: password_encrypted("user-secret"), "a password is needed to open it"),
    (public_key_encrypted, "encrypted for certificates"),
])
def test_an_encrypted_pdf_is_still_quarantined_and_the_message_says_which(tmp_path: Path, make, says) -> None:
    matter, contents = make_matter([*good_documents()[:1], doc("结果材料", "决定书.pdf", make())])
    with pytest.raises(QuarantineError) as exc:
        stage_matter(matter, appraisal(), opener(contents), tmp_path / "staging")
    (finding,) = exc.value.findings
    assert finding.code == "Q-PDF-ENCRYPTED"
    assert finding.message.startswith("PDF is encrypted: ") and says in finding.message


def test_a_pdf_pypdf_cannot_parse_entirely_is_a_finding_reported_once(tmp_path: Path, root_log) -> None:
    matter, contents = make_matter([*good_documents()[:1], doc("申报材料", "deep.pdf", deeply_nested())])
    with pytest.raises(QuarantineError) as exc:
        stage_matter(matter, appraisal(), opener(contents), tmp_path / "staging")
    broken = [f for f in exc.value.findings if f.code == "Q-PDF-BROKEN"]
    assert len(broken) == 1 and broken[0].message.startswith("not parsed entirely: pypdf could not read some objects")
    # thousands of pypdf warnings, none of them on the night's log: one line for the document
    assert not [r for r in root_log if r.name.startswith("pypdf")]
    lines = [r.getMessage() for r in root_log if r.name == "guidang" and "deep.pdf" in r.getMessage()]
    assert len(lines) == 1
    count = int(re.search(r"pypdf reported ([0-9,]+) warning", lines[0]).group(1).replace(",", ""))
    assert count > 1000


def test_content_stream_syntax_errors_are_named_and_the_pdf_is_still_a_pdf(tmp_path: Path) -> None:
    info = inspect(tmp_path, broken_content_stream())
    assert info.readable and info.pages == 1
    assert info.content_errors.startswith("content streams have syntax errors: page 1: ")
    matter, contents = make_matter([*good_documents()[:1], doc("申报材料", "扫描件.pdf", broken_content_stream())])
    staged = stage_matter(matter, appraisal(), opener(contents), tmp_path / "staging")
    assert [d.format.name for d in staged.documents] == ["PDF", "PDF"]
    assert any("content streams have syntax errors" in f.message for f in staged.findings)
    assert finalize(staged).report.passed


def test_ordinary_pdfs_give_no_warning_and_no_log_line(tmp_path: Path, root_log) -> None:
    info = inspect(tmp_path, make_pdf(["fine"], pages=3))
    assert (info.warnings, info.content_errors, info.error) == (0, None, None)
    assert not [r for r in root_log if r.name.startswith("pypdf") or r.name == "guidang"]
