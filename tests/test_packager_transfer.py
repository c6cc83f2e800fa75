"""write_transfer_batch: the DA/T 93 batch files, validated with lxml against their XSDs."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from packager.transfer import TransferRow, write_transfer_batch
from schemas.findings import GuidangError
from tests.test_packager_support import ARCHIVED_AT, FONDS, build

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def _rows(tmp_path: Path) -> list[TransferRow | dict]:
    result = build(tmp_path)
    md = etree.parse(str(result.folder / "元数据.xml")).getroot()
    real = TransferRow(
        archival_code=md.findtext("档号/完整档号"), responsible=md.findtext("内容描述/责任者"),
        title=md.findtext("内容描述/题名"), date=md.findtext("内容描述/日期"), period=md.findtext("档号/保管期限"),
        pages=result.page_count, bytes=sum(f.size for f in result.files), file_count=len(result.files),
        check_passed=result.passed,
    )
    other = {"archival_code": "Z109-WS·2026·Y·ZJ-0001", "responsible": "西湖区住房和城乡建设局",
             "title": "建筑工程施工许可（某建设公司）", "date": "20260211", "period": "Y", "pages": 12,
             "remarks": "补充材料后重新归档", "bytes": 1_234_567_890, "file_count": 9, "check_passed": False}
    return [other, real]


def test_batch_files_validate_and_add_up(tmp_path: Path) -> None:
    rows = _rows(tmp_path)
    out = tmp_path / "transfers" / "B20260302"
    paths = write_transfer_batch(out, batch_id="B20260302", fonds=FONDS, packages=rows, created_at=ARCHIVED_AT)
    assert [p.name for p in paths] == ["说明文件.txt", "目录文件.xml", "电子档案移交与接收登记表.xml",
                                       "电子档案移交与接收登记表.html"]
    catalogue = etree.parse(str(out / "目录文件.xml"))
    register = etree.parse(str(out / "电子档案移交与接收登记表.xml"))
    for tree, xsd in ((catalogue, "catalogue.xsd"), (register, "transfer_register.xsd")):
        schema = etree.XMLSchema(etree.parse(str(SCHEMAS / xsd)))
        assert schema.validate(tree), schema.error_log

    entries = catalogue.getroot().findall("条目")
    assert [e.findtext("顺序号") for e in entries] == ["1", "2"]
    assert [e.findtext("档号") for e in entries] == ["Z109-WS·2026·D30·SJ-0001", "Z109-WS·2026·Y·ZJ-0001"]
    assert [e.findtext("保管期限") for e in entries] == ["30年", "永久"]
    assert entries[0].findtext("页数") == "7" and entries[1].findtext("备注") == "补充材料后重新归档"

    real, other = TransferRow.coerce(rows[1]), TransferRow.coerce(rows[0])
    total = real.bytes + other.bytes
    r = register.getroot()
    assert r.findtext("移交电子档案数量") == "2"
    assert r.findtext("电子文件数量") == str(real.file_count + 9)
    assert r.findtext("字节数") == str(total)
    assert r.findtext("移交数据量") == f"{total / 1e9:.3f}" == "1.235"
    assert [e.text for e in r.findall("摘要算法")] == ["SM3", "SHA-256"]
    assert r.findtext("检测结果/通过件数") == "1" and r.findtext("检测结果/未通过件数") == "1"
    assert r.findtext("检测结果/结论") == "不合格"

    page = (out / "电子档案移交与接收登记表.html").read_text(encoding="utf-8")
    assert "1.235 GB" in page and "SM3、SHA-256" in page and "Z109-WS·2026·Y·ZJ-0001" in page
    assert "接收人（签名）" in page
    readme = (out / "说明文件.txt").read_text(encoding="utf-8")
    assert "共 2 件" in readme and "通过 1 件，未通过 1 件" in readme

    before = {p.name: p.read_bytes() for p in paths}
    write_transfer_batch(out, batch_id="B20260302", fonds=FONDS, packages=list(reversed(rows)), created_at=ARCHIVED_AT)
    assert {p.name: p.read_bytes() for p in paths} == before


def test_html_escapes_titles(tmp_path: Path) -> None:
    row = {"archival_code": "Z109-WS·2026·D10·SJ-0001", "responsible": "机构", "title": "<script>x</script>",
           "date": "20260101", "period": "D10"}
    write_transfer_batch(tmp_path, batch_id="B1", fonds=FONDS, packages=[row], created_at=ARCHIVED_AT)
    page = (tmp_path / "电子档案移交与接收登记表.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_bad_rows_are_refused(tmp_path: Path) -> None:
    row = {"archival_code": "Z109-WS·2026·D10·SJ-0001", "responsible": "机构", "title": "t", "date": "20260101",
           "period": "D10"}
    with pytest.raises(GuidangError, match="listed twice"):
        write_transfer_batch(tmp_path / "a", batch_id="B1", fonds=FONDS, packages=[row, row], created_at=ARCHIVED_AT)
    with pytest.raises(GuidangError, match="unknown fields"):
        write_transfer_batch(tmp_path / "b", batch_id="B1", fonds=FONDS, packages=[row | {"colour": "red"}],
                             created_at=ARCHIVED_AT)
    with pytest.raises(GuidangError) as err:
        write_transfer_batch(tmp_path / "c", batch_id="B1", fonds=FONDS, packages=[row | {"date": "2026-01-01"}],
                             created_at=ARCHIVED_AT)
    assert {f.code for f in err.value.findings} == {"TRANSFER-INVALID"}
    assert not (tmp_path / "c").exists()


def test_batch_files_mask_personal_data_and_escape_control_characters(tmp_path: Path) -> None:
    row = TransferRow(archival_code="Z109-WS·2026·Y·ZJ-0002", responsible="西湖区住房和城乡建设局",
                      title="赵涛（ID330106 19900101 1234）\x1b[31m的许可\u202e", date="20260211", period="Y",
                      remarks="联系 138-1234-5678；代码 91330106ma2abcde1x", file_count=1, bytes=10)
    out = tmp_path / "transfers" / "B1"
    write_transfer_batch(out, batch_id="B1", fonds=FONDS, packages=[row], created_at=ARCHIVED_AT)
    for name in ("目录文件.xml", "电子档案移交与接收登记表.html"):
        text = (out / name).read_text(encoding="utf-8")
        assert "19900101" not in text and "\x1b" not in text and "\u202e" not in text, name
        assert "赵涛（ID330106" in text
    catalogue = (out / "目录文件.xml").read_text(encoding="utf-8")
    assert "1234-5678" not in catalogue and "ma2abcde" not in catalogue and "138-****-5678" in catalogue
