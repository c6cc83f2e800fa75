"""OFD as real producers write it (issue 31, items 1 and 4): the archival profile OFD-A accepted and
recorded; what readers tolerate (a font neither embedded nor standard, a missing resource file no
page uses) archived with a warning in 元数据 and the 检测报告; what stops a page from rendering
quarantined naming the part; hostile containers stopped within limits, each part read once and
identical findings reported once with a count. Every OFD is generated here.
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

from lxml import etree

from guidang_demo.ofds import demo_identity, make_ofd, ofd_parts, seal_parts, zip_parts
from packager.checks import check_package
from packager.content import ContentOptions
from packager.ofd import OfdOptions, inspect_ofd
from packager.ofd_container import OfdLimits
from schemas.config import load_settings
from schemas.layout import CHECK_REPORT_FILE, METADATA_FILE
from tests.test_content import OFD_TYPE, build_with, file_entry, quarantined
from tests.test_packager_support import doc


def test_ofd_a_is_archived_and_its_profile_recorded(tmp_path: Path) -> None:
    data = make_ofd(["电子营业执照"], sealed=True, doc_type="OFD-A")
    pkg = build_with(tmp_path, [doc("结果材料", "执照.ofd", data, media_type=OFD_TYPE)])
    entry = file_entry(pkg.folder, "执照.ofd")
    assert entry.findtext("格式子类型") == "OFD-A" and entry.findtext("签名信息/签名/状态") == "有效"
    plain = build_with(tmp_path / "plain", [doc("结果材料", "执照.ofd", make_ofd(["x"]), media_type=OFD_TYPE)])
    assert file_entry(plain.folder, "执照.ofd").findtext("格式子类型") == "OFD"
    # a stored package checked from scratch agrees, and a 元数据 that says otherwise is caught (GD-1-3)
    assert check_package(pkg.folder).passed
    meta = pkg.folder / METADATA_FILE
    meta.write_bytes(meta.read_bytes().replace("<格式子类型>OFD-A<".encode(), "<格式子类型>OFD<".encode()))
    again = check_package(pkg.folder)
    assert any(f.message == "格式子类型 says OFD, the OFD's DocType is OFD-A" for f in again.item("GD-1-3").findings)


def test_a_doc_type_no_producer_writes_is_quarantined(tmp_path: Path) -> None:
    parts = ofd_parts(["x"])
    parts["OFD.xml"] = parts["OFD.xml"].replace(b'DocType="OFD"', b'DocType="PDF"')
    findings = quarantined(tmp_path, [doc("结果材料", "x.ofd", zip_parts(parts), media_type=OFD_TYPE)])
    assert [(f.code, f.message) for f in findings] == [("Q-OFD-INVALID", "OFD.xml: DocType is 'PDF', neither OFD "
                                                        "nor OFD-A")]


def test_the_title_face_of_every_gongwen_needs_no_embedding(tmp_path: Path) -> None:
    for face in ("方正小标宋简体", "仿宋_GB2312", "TimesNewRomanPSMT", "Tahoma"):
        path = tmp_path / "a.ofd"
        path.write_bytes(make_ofd(["通知"], font=face))
        result = inspect_ofd(path)
        assert not result.problems and not result.warnings, (face, result)


def test_a_font_neither_embedded_nor_standard_is_archived_with_a_warning(tmp_path: Path) -> None:
    pkg = build_with(tmp_path, [doc("结果材料", "通知.ofd", make_ofd(["通知"], pages=3, font="汉仪旗黑"),
                                    media_type=OFD_TYPE)])
    entry = file_entry(pkg.folder, "通知.ofd")
    note = entry.find("检测提示/提示")
    assert note.get("代码") == "W-OFD-FONT-NOT-EMBEDDED" and note.get("次数") == "1"
    assert note.text == "Doc_0/PublicRes.xml: font 1 '汉仪旗黑' is neither embedded nor a standard face (readers " \
                        "substitute it)"
    assert pkg.report.passed and pkg.report.item("GD-3-3").status == "pass"
    report = etree.parse(str(pkg.folder / CHECK_REPORT_FILE)).getroot()
    problem = report.find("检测项目[@代码='GD-3-3']/问题")
    assert problem.get("级别") == "警告" and "汉仪旗黑" in problem.text and problem.get("位置") == "结果材料/通知.ofd"


def test_the_standard_faces_and_the_strictness_come_from_configuration(tmp_path: Path) -> None:
    (tmp_path / "guidang.yaml").write_text(
        "fonds: [{code: X001, name: 示范}]\nsources: [{kind: unified, name: u, base_url: 'http://x'}]\n"
        "ofd: {standard_fonts: [汉仪旗黑], require_embedded_fonts: true, max_pages: 10}\n", encoding="utf-8")
    settings = load_settings(tmp_path / "guidang.yaml")
    from packager.content import content_options

    options = content_options(settings).ofd
    assert options.require_embedded_fonts and options.limits.max_pages == 10
    path = tmp_path / "a.ofd"
    path.write_bytes(make_ofd(["通知"], font="汉仪旗黑"))
    assert inspect_ofd(path, options).warnings == () and not inspect_ofd(path, options).problems
    path.write_bytes(make_ofd(["通知"], font="宋体"))  # no longer listed, and fonts must be embedded
    assert inspect_ofd(path, options).problems == (
        "Doc_0/PublicRes.xml: font 1 '宋体' is neither embedded nor a standard face (readers substitute it)",)


def test_a_missing_resource_file_no_page_uses_is_a_warning(tmp_path: Path) -> None:
    parts = ofd_parts(["x"])
    parts["Doc_0/Document.xml"] = parts["Doc_0/Document.xml"].replace(
        b"<ofd:PublicRes>PublicRes.xml</ofd:PublicRes>",
        b"<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>")
    path = tmp_path / "a.ofd"
    path.write_bytes(zip_parts(parts))
    result = inspect_ofd(path)
    assert not result.problems and result.pages == 1
    assert [(w.code, w.message) for w in result.warnings] == [(
        "W-OFD-RESOURCE-MISSING", "Doc_0/DocumentRes.xml: resource file named in Doc_0/Document.xml is not in the "
        "container")]


def test_a_missing_resource_file_a_page_uses_is_quarantined_naming_the_page(tmp_path: Path) -> None:
    parts = ofd_parts(["x"], pages=2)
    del parts["Doc_0/PublicRes.xml"]  # the pages' font 1 is declared there
    findings = quarantined(tmp_path, [doc("结果材料", "x.ofd", zip_parts(parts), media_type=OFD_TYPE)])
    assert [f.message for f in findings] == [
        "Doc_0/Pages/Page_0/Content.xml: page 1 uses font '1', which no resource file of Doc_0/Document.xml declares",
        "Doc_0/Pages/Page_1/Content.xml: page 2 uses font '1', which no resource file of Doc_0/Document.xml declares"]


def test_a_page_whose_content_is_missing_is_quarantined(tmp_path: Path) -> None:
    parts = ofd_parts(["x"], pages=2, sealed=True)
    del parts["Doc_0/Pages/Page_1/Content.xml"]
    findings = quarantined(tmp_path, [doc("结果材料", "x.ofd", zip_parts(parts), media_type=OFD_TYPE)])
    assert findings[0].code == "Q-OFD-INVALID"
    assert findings[0].message == ("Doc_0/Pages/Page_1/Content.xml: listed as page 2 in Doc_0/Document.xml but not "
                                   "in the container")


def _pages_of_one_part(pages: int, content: bytes, *, missing: bool = False) -> bytes:
    parts = ofd_parts(["x"])
    listed = "".join(f'<ofd:Page ID="{10 + i}" BaseLoc="Pages/Page_0/Content.xml"/>' for i in range(pages))
    doc_xml = parts["Doc_0/Document.xml"].decode()
    start, end = doc_xml.index("<ofd:Pages>") + len("<ofd:Pages>"), doc_xml.index("</ofd:Pages>")
    parts["Doc_0/Document.xml"] = (doc_xml[:start] + listed + doc_xml[end:]).encode()
    if missing:
        del parts["Doc_0/Pages/Page_0/Content.xml"]
    else:
        parts["Doc_0/Pages/Page_0/Content.xml"] = content
    return zip_parts(parts)


def test_one_large_part_listed_as_a_thousand_pages_is_read_once(tmp_path: Path) -> None:
    page = ofd_parts(["x"])["Doc_0/Pages/Page_0/Content.xml"]
    text = page[page.index(b"<ofd:TextObject"):page.index(b"</ofd:Layer>")]
    big = page.replace(b"</ofd:Layer>", text * (12 * 1024 * 1024 // len(text)) + b"</ofd:Layer>")
    path = tmp_path / "a.ofd"
    path.write_bytes(_pages_of_one_part(1000, big))
    assert path.stat().st_size < 200_000
    started = time.perf_counter()
    result = inspect_ofd(path)
    assert time.perf_counter() - started < 30  # seconds, on a loaded machine; the bytes below are the proof
    assert result.pages == 1000 and not result.problems
    assert len(big) < result.read_bytes < 2 * len(big)  # the 12 MB part parsed once, not a thousand times
    # the same missing part listed a thousand times: one finding with its count, not a thousand
    path.write_bytes(_pages_of_one_part(1000, b"", missing=True))
    result = inspect_ofd(path)
    assert result.problems == ("Doc_0/Pages/Page_0/Content.xml: listed as page 1 in Doc_0/Document.xml but not in "
                               "the container (1000 times)",)
    # and above the configured page limit, nothing is parsed
    small = OfdOptions(limits=OfdLimits(max_pages=500))
    assert inspect_ofd(path, small).problems == (
        "Doc_0/Document.xml: lists 1,000 pages, above the limit of 500 pages for one OFD",)


def test_a_seal_referencing_a_zip_bomb_member_many_times_is_bounded(tmp_path: Path) -> None:
    parts = ofd_parts(["x"], sealed=True, seals=0)
    parts["Doc_0/Res/bomb.bin"] = b"\0" * (64 * 1024 * 1024)
    parts.update(seal_parts(parts, demo_identity()))
    sig = "Doc_0/Signs/Sign_0/Signature.xml"
    ref = b'<ofd:Reference FileRef="/Doc_0/Res/bomb.bin">'
    head, tail = parts[sig].split(ref, 1)
    check, rest = tail.split(b"</ofd:Reference>", 1)
    parts[sig] = head + (ref + check + b"</ofd:Reference>") * 8 + rest
    data = zip_parts(parts)
    assert len(data) < 1_000_000
    path = tmp_path / "bomb.ofd"
    path.write_bytes(data)
    started = time.perf_counter()
    result = inspect_ofd(path)
    assert time.perf_counter() - started < 30  # seconds, on a loaded machine; the bytes below are the proof
    assert not result.problems and result.signatures[0].references == 13
    bomb = 64 * 1024 * 1024
    assert bomb < result.read_bytes < 2 * bomb  # the member digested once, not eight times
    # with a smaller budget of decompressed bytes the walk stops, naming the part
    tight = OfdOptions(limits=OfdLimits(max_decompressed_bytes=16 * 1024 * 1024))
    result = inspect_ofd(path, tight)
    assert result.problems == ("Doc_0/Res/bomb.bin: reading it passes the limit of 16,777,216 decompressed bytes for "
                               "one OFD",)


def test_the_zip_of_an_ofd_is_read_lazily_for_an_unreadable_container(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("OFD.xml", b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
    path = tmp_path / "a.ofd"
    path.write_bytes(buf.getvalue())
    assert inspect_ofd(path).problems == ("OFD.xml: no DocBody",)


def test_content_options_default_carries_the_standard_faces() -> None:
    assert "方正小标宋简体" in ContentOptions().ofd.standard_fonts


def test_a_signature_list_named_but_absent_is_a_warning(tmp_path: Path) -> None:
    parts = ofd_parts(["发票模板"], sealed=True, seals=0)  # OFD.xml names Doc_0/Signs/Signatures.xml
    path = tmp_path / "a.ofd"
    path.write_bytes(zip_parts(parts))
    result = inspect_ofd(path)
    assert not result.problems and result.signatures == ()
    assert [(w.code, w.message) for w in result.warnings] == [(
        "W-OFD-SIGNATURES-MISSING", "Doc_0/Signs/Signatures.xml: signature list named in OFD.xml is not in the "
        "container (no signature to check)")]
