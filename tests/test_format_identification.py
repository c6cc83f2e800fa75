"""Issue 32 item 1: identification that is right for office and container files, PRONOM answers
元数据 can always record, and an empty file that is no format at all."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from guidang_demo.ofds import make_ofd
from guidang_demo.pdfs import make_pdf
from packager import format_id
from packager.containers import identify_document, with_container
from packager.format_id import PronomMatch, best_pronom, identify_pronom, recorded_puid
from packager.formats import identify
from schemas.metadata import METADATA_XSD
from tests.office_support import converted, docx_bytes, xlsx_bytes

XS = "{http://www.w3.org/2001/XMLSchema}"
XSD_PATH = Path(__file__).resolve().parent.parent / "schemas" / METADATA_XSD


def xsd_puid_pattern() -> re.Pattern[str]:
    """PRONOM标识's pattern as metadata.xsd states it (XSD patterns match the whole value)."""
    schema = etree.parse(str(XSD_PATH)).getroot()
    element = schema.find(f".//{XS}element[@name='PRONOM标识']")
    return re.compile(element.find(f".//{XS}pattern").get("value"))


def test_every_identifier_the_shipped_pronom_files_can_answer_fits_the_metadata_xsd() -> None:
    pattern = xsd_puid_pattern()
    formats = format_id._matcher().formats
    assert len(formats) > 1500
    variants = []
    for fmt, puid, _ in formats:
        match = PronomMatch(puid=puid, name=fmt.name, version=None, media_type=None)
        recorded = recorded_puid("DOCX", match)
        assert recorded is None or pattern.fullmatch(recorded), f"{puid} would be recorded as {recorded!r}"
        if not pattern.fullmatch(puid):
            variants.append(puid)
    # FIDO's own entries exist and are the reason for the mapping
    assert "fido-fmt/189.word" in variants
    assert recorded_puid("DOCX", PronomMatch("fido-fmt/189.word", "x", None, None)) == "fmt/412"
    assert recorded_puid("XLSX", PronomMatch("fido-fmt/189.xl", "x", None, None)) == "fmt/214"
    assert recorded_puid("TXT", PronomMatch("fido-fmt/python", "x", None, None)) is None


def _epub() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", "<container/>")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return out.getvalue()


def identified(tmp_path: Path, name: str, data: bytes) -> tuple[str, str | None, str | None]:
    path = tmp_path / name
    path.write_bytes(data)
    fmt, container = identify_document(path, data[:1024], name, None)
    pronom = with_container(identify_pronom(path), container)
    return fmt.name, recorded_puid(fmt.name, pronom), pronom.version if pronom and recorded_puid(fmt.name, pronom) \
        else None


@pytest.mark.parametrize("name,make,expected", [
    ("a.docx", docx_bytes, ("DOCX", "fmt/412", "2007 onwards")),
    ("a.bin", docx_bytes, ("DOCX", "fmt/412", "2007 onwards")),  # by content, whatever the name
    ("a.xlsx", xlsx_bytes, ("XLSX", "fmt/214", "2007 onwards")),
    ("a.zip", lambda: converted("odt"), ("ODT", "fmt/1756", "1.3")),  # an ODT is not "ZIP Format"
    ("a.ods", lambda: converted("ods", "xlsx"), ("ODS", "fmt/1755", "1.3")),
    ("a.pptx", lambda: converted("pptx"), ("PPTX", "fmt/215", "2007 onwards")),
    ("a.doc", lambda: converted("doc"), ("DOC", "fmt/40", "97-2003")),
    ("a.xls", lambda: converted("xls", "xlsx"), ("XLS", "fmt/61", "8")),
    ("a.wps", lambda: converted("doc"), ("WPS", None, None)),  # Kingsoft Writer: no PRONOM entry
    ("a.et", xlsx_bytes, ("ET", None, None)),
    ("a.epub", _epub, ("EPUB", "fmt/483", None)),
    ("a.zip", _zip, ("ZIP", "x-fmt/263", None)),
    ("a.ofd", lambda: make_ofd(["licence"]), ("OFD", None, None)),
])
def test_containers_are_identified_by_their_content(tmp_path: Path, name, make, expected) -> None:
    assert identified(tmp_path, name, make()) == expected


def test_an_empty_file_is_empty_never_a_format(tmp_path: Path) -> None:
    assert format_id.identify_bytes(b"", b"")  # FIDO's signatures of optional bytes match nothing at all
    assert best_pronom(b"", b"") is None
    for name in ("empty.rtf", "empty.pdf", "empty"):
        assert identified(tmp_path, name, b"") == ("EMPTY", None, None)


def test_a_pdf_whose_header_follows_other_bytes_is_a_pdf() -> None:
    data = b"\n\n% produced by a scanner driver\n" + make_pdf(["scan"])
    assert identify(data[:1024], "scan.pdf").name == "PDF"
    assert identify(data[:1024], "scan.txt").name != "PDF"  # only a file that claims PDF is read so
