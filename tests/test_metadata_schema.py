"""schemas/metadata.xsd and schemas/metadata.py: the mandatory elements are mandatory, every element
is documented, and what build_metadata writes is what the XSD accepts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from schemas.metadata import MANDATORY_ELEMENTS, DocumentEntry, build_metadata, read_metadata, validate_metadata
from schemas.model import Applicant, DocumentGroup
from schemas.signature_info import SignatureRecord, SignatureState, write_signature_info
from schemas.xmlio import parse_xml
from tests.test_packager_support import ARCHIVED_AT, CARD, FONDS, appraisal, archival_code, build, make_matter

XSD = Path(__file__).resolve().parent.parent / "schemas" / "metadata.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"


def _mandatory_from_xsd() -> set[str]:
    """Every element path whose own minOccurs is not 0, read from the XSD itself."""
    schema = etree.parse(str(XSD)).getroot()
    types = {t.get("name"): t for t in schema.findall(f"{XS}complexType")}
    out: set[str] = set()

    def walk(node: etree._Element, prefix: str) -> None:
        for el in node.iter(f"{XS}element"):
            if el is node or el.getparent() is None:
                continue
            # only direct element children of this content model (not grandchildren's)
            owner = el.getparent()
            while owner is not None and owner.tag != f"{XS}element" and owner.get("name") not in types:
                owner = owner.getparent()
            if owner is not node:
                continue
            path = f"{prefix}/{el.get('name')}".lstrip("/")
            if el.get("minOccurs", "1") != "0":
                out.add(path)
            inner = types.get(el.get("type")) if el.get("type") in types else el
            walk(inner, path)

    walk(schema.find(f"{XS}element[@name='元数据']"), "")
    return out


def test_mandatory_list_matches_the_xsd() -> None:
    assert set(MANDATORY_ELEMENTS) == _mandatory_from_xsd()


def test_every_element_is_documented() -> None:
    schema = etree.parse(str(XSD)).getroot()
    elements = schema.findall(f".//{XS}element")
    assert len(elements) > 60
    for el in elements:
        text = el.findtext(f"{XS}annotation/{XS}documentation")
        assert text and text.strip(), el.get("name")


@pytest.fixture(scope="module")
def good_metadata(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return (build(tmp_path_factory.mktemp("pkg")).folder / "元数据.xml").read_bytes()


@pytest.mark.parametrize("path", MANDATORY_ELEMENTS)
def test_removing_a_mandatory_element_fails(good_metadata: bytes, path: str) -> None:
    root = etree.fromstring(good_metadata)
    if path.startswith("文件信息/文件/签名信息"):  # the good matter's documents are unsigned: give one a seal
        write_signature_info(root.find("文件信息/文件"), [SignatureRecord(kind="OFD Seal",
                                                                         state=SignatureState.UNVERIFIED)])
    if path.startswith("文件信息/文件/检测提示"):  # and a warning (an OFD font not embedded)
        notes = etree.SubElement(root.find("文件信息/文件"), "检测提示", {"数量": "1"})
        etree.SubElement(notes, "提示", {"代码": "W-OFD-FONT-NOT-EMBEDDED", "次数": "1"}).text = "font"
    if path.startswith("文件信息/文件/格式转换"):  # no rendition in the good matter: record one
        first = root.find("文件信息/文件")
        event = etree.SubElement(first, "格式转换")
        for tag, value in (("源文件", "申报材料/申请书.docx"), ("转换工具", "LibreOffice"), ("工具版本", "7.4.7.2"),
                           ("转换时间", "2026-02-11T02:00:00+08:00"), ("源格式", "DOCX"), ("目标格式", "PDF/A-2b"),
                           ("转换结果", "成功")):
            etree.SubElement(event, tag).text = value
    assert validate_metadata(etree.ElementTree(root)) == []
    targets = root.findall(path)
    if not targets and path == "业务信息/证照/证照名称":
        pytest.fail("the good matter must carry a 证照 so that this path is exercised")
    assert targets, path
    for el in targets:
        el.getparent().remove(el)
    tree = etree.ElementTree(root)
    findings = validate_metadata(tree)
    assert findings, f"{path} removed but the metadata still validates"
    assert {f.code for f in findings} == {"Q-METADATA-INVALID"}
    leaf = path.rsplit("/", 1)[-1]
    missing = read_metadata(tree).missing_mandatory()  # what GD-2-3 reports
    assert any(m.endswith(leaf) for m in missing), (path, missing)


def test_emptying_a_mandatory_leaf_is_reported(good_metadata: bytes) -> None:
    root = etree.fromstring(good_metadata)
    root.find("内容描述/责任者").text = "   "
    tree = etree.ElementTree(root)
    assert validate_metadata(tree)
    assert read_metadata(tree).missing_mandatory() == ["内容描述/责任者"]


@pytest.mark.parametrize(
    ("path", "value"),
    [("文件信息/文件/SM3", "XYZ"), ("档号/保管期限", "D31"), ("档号/年度", "26"), ("内容描述/日期", "2026-02-10"),
     ("内容描述/密级", "随便"), ("形式特征/件数", "0"), ("业务信息/办结时间", "yesterday")],
)
def test_wrong_values_fail(good_metadata: bytes, path: str, value: str) -> None:
    root = etree.fromstring(good_metadata)
    root.find(path).text = value
    assert validate_metadata(etree.ElementTree(root))


def test_unknown_element_fails(good_metadata: bytes) -> None:
    root = etree.fromstring(good_metadata)
    etree.SubElement(root.find("内容描述"), "备注").text = "x"
    assert validate_metadata(etree.ElementTree(root))


def test_messages_never_show_an_identity_number(good_metadata: bytes) -> None:
    root = etree.fromstring(good_metadata)
    root.find("内容描述/日期").text = CARD
    findings = validate_metadata(etree.ElementTree(root))
    assert findings
    assert all(CARD not in f.message for f in findings)


def test_minimal_matter_validates_and_dates_are_beijing() -> None:
    matter, _ = make_matter(
        service_version=None, handling_type=None, agency_code=None, region_code=None,
        applicant=Applicant(name="张三"), steps=[], result=None, decided_at=None, result_document_number=None,
        license_name=None, license_number=None, received_at=None,
        completed_at=datetime(2026, 2, 10, 17, 0, tzinfo=UTC), updated_at=datetime(2026, 2, 10, 17, 1, tzinfo=UTC),
    )
    entry = DocumentEntry(group=DocumentGroup.RESULT, title="决定书", file_name="a.ofd", path="结果材料/a.ofd",
                          format="OFD", media_type="application/ofd", size=10, sm3="0" * 64, sha256="1" * 64)
    a = appraisal(retention_period="Y", disposition_date=None, rule_basis=None, org_code="")
    xml = build_metadata(matter, a, [entry], fonds=FONDS, archival_code=archival_code(7, a), item_number=7,
                         archived_at=ARCHIVED_AT)
    assert validate_metadata(xml) == []
    view = read_metadata(parse_xml(xml))
    root = view.tree.getroot()
    assert root.findtext("内容描述/日期") == "20260211"  # 17:00 UTC is 01:00 next day in Beijing
    assert root.find("档号/机构问题代码") is None and root.find("保管信息/到期鉴定日期") is None
    assert root.findtext("形式特征/文件组合类型") == "单件"
    assert view.documents[0].pages is None and view.document_count == 1
    assert view.archival_code == "Z109-WS·2026·Y-0007"
    assert build_metadata(matter, a, [entry], fonds=FONDS, archival_code=archival_code(7, a), item_number=7,
                          archived_at=ARCHIVED_AT) == xml
