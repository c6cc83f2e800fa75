"""Issue 32: office documents archived with their original kept and a PDF/A-2b rendition made by
the real LibreOffice; the format policy (keep / normalise / refuse); conversions that fail, hang or
have no LibreOffice to run. Every file is made by the test (tests/office_support.py).
"""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from lxml import etree
from pypdf import PdfReader

from packager import QuarantineError
from packager.checks import check_package
from packager.content import ContentOptions
from packager.convert import ConverterOptions, convert_to_pdfa
from packager.stage import stage_matter
from schemas.format_policy import FormatRule, FormatsConfig
from schemas.layout import METADATA_FILE
from tests.office_support import converted, docx_bytes, elf_bytes, require_soffice, xlsx_bytes
from tests.test_packager_support import appraisal, doc, finalize, good_documents, make_matter, opener

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def options(tmp_path: Path, **converter: object) -> ContentOptions:
    conv = ConverterOptions(profiles=tmp_path / "converter", **converter)  # type: ignore[arg-type]
    return ContentOptions(policy=FormatsConfig(), converter=conv)


def stage_and_build(tmp_path: Path, extra: list, opts: ContentOptions):
    matter, contents = make_matter([*good_documents()[:1], *extra])
    staged = stage_matter(matter, appraisal(), opener(contents), tmp_path / "staging", content=opts)
    return finalize(staged)


def quarantine_of(tmp_path: Path, extra: list, opts: ContentOptions) -> list:
    with pytest.raises(QuarantineError) as exc:
        stage_and_build(tmp_path, extra, opts)
    return exc.value.findings


def entries(folder: Path) -> dict[str, etree._Element]:
    root = etree.parse(str(folder / METADATA_FILE)).getroot()
    return {f.findtext("相对路径"): f for f in root.findall("文件信息/文件")}


def page_texts(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


@pytest.mark.parametrize("name,make,fmt,puid", [
    ("申请书.docx", docx_bytes, "DOCX", "fmt/412"),
    ("经营场所.xlsx", xlsx_bytes, "XLSX", "fmt/214"),
    ("申请书.odt", lambda: converted("odt"), "ODT", "fmt/1756"),
    ("申请书.doc", lambda: converted("doc"), "DOC", "fmt/40"),
    ("申请书.rtf", lambda: converted("rtf"), "RTF", "fmt/"),
])
def test_an_office_document_is_kept_with_a_pdfa_rendition(tmp_path: Path, name, make, fmt, puid) -> None:
    require_soffice()
    data = make()
    pkg = stage_and_build(tmp_path, [doc("申报材料", name, data, media_type="application/octet-stream")],
                          options(tmp_path))
    original, rendition = f"申报材料/{name}", f"申报材料/{name}.pdf"
    assert (pkg.folder / original).read_bytes() == data  # the original, byte for byte
    found = entries(pkg.folder)
    assert found[original].findtext("格式") == fmt
    assert found[original].findtext("PRONOM标识").startswith(puid)
    made = found[rendition]
    assert made.findtext("格式") == "PDF"
    assert made.findtext("PRONOM标识") == "fmt/477"  # PDF/A-2b, by PRONOM's own signature
    event = made.find("格式转换")
    assert event.findtext("源文件") == original
    assert event.findtext("转换工具") == "LibreOffice" and event.findtext("工具版本")[0].isdigit()
    assert [event.findtext(t) for t in ("源格式", "目标格式", "转换结果")] == [fmt, "PDF/A-2b", "成功"]
    assert int(made.findtext("页数")) >= 1
    assert pkg.report.passed and pkg.report.item("GD-3-2").status == "pass"
    assert "1 original(s) kept beside their renditions" in pkg.report.item("GD-3-2").detail
    # the stored package, checked from scratch (接收检测), agrees
    again = check_package(pkg.folder)
    assert again.passed, [(i.code, [f.message for f in i.findings]) for i in again.failed_items]


@pytest.mark.parametrize("kind,make", [("docx", lambda: docx_bytes(pages=3)), ("xlsx", xlsx_bytes)])
def test_two_conversions_give_the_same_pages_and_the_same_bytes(tmp_path: Path, kind, make) -> None:
    require_soffice()
    source = tmp_path / f"申请书.{kind}"
    source.write_bytes(make())
    # two machines' worth: separate profiles, so nothing of the first conversion is reused
    one, two = ConverterOptions(profiles=tmp_path / "one"), ConverterOptions(profiles=tmp_path / "two")
    first, second = tmp_path / "1.pdf", tmp_path / "2.pdf"
    made = convert_to_pdfa(source, kind, first, one)
    time.sleep(1.1)  # LibreOffice's dates are to the second: make them differ
    convert_to_pdfa(source, kind, second, two)
    assert (made.target_format, made.tool) == ("PDF/A-2b", "LibreOffice")
    assert page_texts(first) == page_texts(second)
    if kind == "docx":
        assert len(PdfReader(first).pages) == 3
        assert "申请人" in page_texts(first)[0] and "第 3 页" in page_texts(first)[2]
    # what LibreOffice writes differently on every run (dates, /ID, the output profile's date) is settled
    assert first.read_bytes() == second.read_bytes()
    reader = PdfReader(first)
    assert "/CreationDate" not in reader.metadata
    assert reader.trailer["/ID"][0] == reader.trailer["/ID"][1]
    assert b"pdfaid:part>2<" in reader.trailer["/Root"]["/Metadata"].get_object().get_data()


def test_a_package_with_a_rendition_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    require_soffice()
    opts = options(tmp_path)
    extra = [doc("申报材料", "申请书.docx", docx_bytes(), media_type=DOCX_TYPE)]
    first = stage_and_build(tmp_path / "a", extra, opts)
    second = stage_and_build(tmp_path / "b", extra, opts)  # the night resumed after a kill
    assert [(f.path, f.sha256) for f in first.files] == [(f.path, f.sha256) for f in second.files]


def test_a_refused_format_is_quarantined_naming_the_policy_row(tmp_path: Path) -> None:
    tool = doc("申报材料", "tool.bin", elf_bytes(), media_type="application/octet-stream")
    findings = quarantine_of(tmp_path, [tool], options(tmp_path))
    refused = [f for f in findings if f.code == "Q-FORMAT-REFUSED"]
    assert len(refused) == 1
    assert refused[0].message == 'format ELF is refused by the format policy, formats.policy[8] "executables"'
    assert refused[0].details["path"] == "申报材料/tool.bin"


def test_an_empty_file_is_empty_and_refused_as_such(tmp_path: Path) -> None:
    findings = quarantine_of(tmp_path, [doc("申报材料", "空白.rtf", b"", media_type="application/rtf")],
                             options(tmp_path))
    assert [f.message for f in findings if f.code == "Q-FORMAT-REFUSED"] == [
        'format EMPTY is refused by the format policy, formats.policy[9] "unidentified"']


def test_a_policy_row_can_keep_a_format_and_then_gd_3_2_judges_it(tmp_path: Path) -> None:
    policy = FormatsConfig(policy=[FormatRule(family="word", formats=["DOCX"], action="keep"),
                                   FormatRule(family="pdf", formats=["PDF"], action="keep")])
    opts = ContentOptions(policy=policy, converter=ConverterOptions(program="/nonexistent/soffice"))
    findings = quarantine_of(tmp_path, [doc("申报材料", "申请书.docx", docx_bytes(), media_type=DOCX_TYPE)], opts)
    assert [f.message for f in findings if f.code == "GD-3-2"] == [
        "format DOCX (application/vnd.openxmlformats-officedocument.wordprocessingml.document) is not a "
        "general-purpose archival format and has no rendition in one"]


def test_without_libreoffice_the_matter_is_quarantined_with_a_clear_reason(tmp_path: Path) -> None:
    findings = quarantine_of(tmp_path, [doc("申报材料", "申请书.docx", docx_bytes(), media_type=DOCX_TYPE)],
                             options(tmp_path, program="/nonexistent/soffice"))
    assert [f.code for f in findings] == ["Q-CONVERTER-MISSING"]
    assert "LibreOffice is not installed" in findings[0].message
    assert 'formats.policy[4] "word processing (文字处理)"' in findings[0].message


def _fake_converter(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-soffice"
    script.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "LibreOffice 0.0.0.0 fake"; exit 0; fi\n' + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_hung_conversion_is_killed_with_its_process_group_and_quarantined(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    # the "converter" starts a child that would outlive it, then hangs: both must be killed
    program = _fake_converter(tmp_path, f'sleep 300 & echo $! > {marker}\nsleep 300\n')
    started = time.monotonic()
    findings = quarantine_of(tmp_path, [doc("申报材料", "申请书.docx", docx_bytes(), media_type=DOCX_TYPE)],
                             options(tmp_path, program=program, timeout_seconds=1.5))
    assert time.monotonic() - started < 30
    assert [f.code for f in findings] == ["Q-CONVERSION-FAILED"]
    assert "did not finish within 1.5 s and was killed" in findings[0].message
    assert not running(int(marker.read_text()))


def running(pid: int) -> bool:
    """Alive, not a zombie waiting for a parent (the killed group's orphans are reaped by init,
    which in a container may never come)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True


def test_a_failed_conversion_carries_the_converters_message(tmp_path: Path) -> None:
    program = _fake_converter(tmp_path, 'echo "Error: source file could not be loaded" >&2\nexit 1\n')
    findings = quarantine_of(tmp_path, [doc("申报材料", "申请书.docx", docx_bytes(), media_type=DOCX_TYPE)],
                             options(tmp_path, program=program))
    assert [f.code for f in findings] == ["Q-CONVERSION-FAILED"]
    assert "source file could not be loaded" in findings[0].message
    assert findings[0].details["policy"] == 'formats.policy[4] "word processing (文字处理)"'


def test_a_damaged_docx_is_quarantined_by_libreoffices_answer(tmp_path: Path) -> None:
    require_soffice()
    data = docx_bytes()
    findings = quarantine_of(tmp_path, [doc("申报材料", "申请书.docx", data[: len(data) // 2], media_type=DOCX_TYPE)],
                             options(tmp_path))
    assert [f.code for f in findings] == ["Q-CONVERSION-FAILED"]
    assert findings[0].message.startswith("DOCX to PDF/A-2b: LibreOffice")
