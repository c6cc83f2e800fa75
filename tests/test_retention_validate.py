"""Loading and validating retention tables: one bad fixture per finding code, all of them in one
workbook, the three file formats and CSV encodings, hashing, and the 5,000-row speed promise."""

from __future__ import annotations

import csv
import json
import time
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import yaml

from retention import RetentionTable, RetentionTableError, load_records, load_table, validate_table
from schemas.findings import Severity, load_codes

HEADER = [
    "事项编码",
    "事项名称",
    "事项类型",
    "实施机构",
    "材料类别",
    "归档范围",
    "保管期限",
    "门类代码",
    "机构问题代码",
    "生效日期",
    "失效日期",
    "依据",
]
GOOD = {"事项编码": "330106-XK-0001", "事项类型": "01", "归档范围": "归档", "保管期限": "30年", "机构问题代码": "SJ"}


def write_xlsx(path: Path, rows: list[dict | None], header: list[str] = HEADER, sheet: str = "表") -> Path:
    """Written with openpyxl directly, not with retention.template, so the loader is tested against
    a workbook it did not write itself."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(header)
    for row in rows:
        ws.append([(row or {}).get(h) for h in header] if row else [])
    wb.save(path)
    return path


def triples(findings) -> set[tuple[str, int | None, str | None]]:
    return {(f.code, f.details["row"], f.details["column"]) for f in findings}


def bad(**changes) -> dict:
    return {**GOOD, "事项编码": "330106-XK-0002", **changes}


# (fixture name = the code it must produce, the bad row, expected (code, column), severity)
CASES = [
    ("R-PERIOD-UNKNOWN", bad(保管期限="20年"), "保管期限", Severity.ERROR),
    ("R-SCOPE-UNKNOWN", bad(归档范围="暂存"), "归档范围", Severity.ERROR),
    ("R-SCOPE-MISSING", bad(归档范围=None), "归档范围", Severity.ERROR),
    ("R-MATTER-TYPE-UNKNOWN", {**bad(事项类型="99"), "事项编码": None}, "事项类型", Severity.ERROR),
    ("R-GROUP-UNKNOWN", bad(材料类别="附件"), "材料类别", Severity.ERROR),
    ("R-GROUP-WITHOUT-CODE", {**bad(材料类别="结果", 事项类型="07"), "事项编码": None}, "材料类别", Severity.ERROR),
    (
        "R-AGENCY-WITHOUT-TYPE",
        {"实施机构": "西湖区民政局", "归档范围": "归档", "保管期限": "10年"},
        "实施机构",
        Severity.ERROR,
    ),
    ("R-PERIOD-MISSING", bad(保管期限=None), "保管期限", Severity.ERROR),
    ("R-PERIOD-IGNORED", bad(归档范围="不归档"), "保管期限", Severity.WARNING),
    ("R-SERVICE-CODE-MALFORMED", bad(事项编码="330106 XK 0002"), "事项编码", Severity.ERROR),
    ("R-DATE-INVALID", bad(生效日期="2026-02-30"), "生效日期", Severity.ERROR),
    ("R-DATES-REVERSED", bad(生效日期="2026-06-01", 失效日期="2026-01-01"), "失效日期", Severity.ERROR),
    ("R-CODE-PART-INVALID", bad(门类代码="W·S"), "门类代码", Severity.ERROR),
    ("R-NORMALISED", bad(事项编码="３３０１０６-XK-0003\u3000"), "事项编码", Severity.WARNING),
    ("R-NORMALISED", {**bad(保管期限="30 年"), "事项编码": "330106-XK-0004"}, "保管期限", Severity.WARNING),
]


@pytest.mark.parametrize(("code", "row", "column", "severity"), CASES, ids=[c[0] for c in CASES])
def test_one_defect_gives_exactly_its_finding(tmp_path: Path, code, row, column, severity) -> None:
    result = load_table(write_xlsx(tmp_path / f"{code}.xlsx", [GOOD, row]))
    assert triples(result.findings) == {(code, 3, column)}
    (finding,) = result.findings
    assert finding.severity == severity
    assert finding.details["sheet"] == "表"
    assert f"row 3, column {'ABCDEFGHIJKL'[HEADER.index(column)]} ({column})" in finding.where
    assert code in load_codes()
    good_rows = {r.row for r in result.table.rules}
    assert good_rows == ({2, 3} if severity == Severity.WARNING else {2})


@pytest.mark.parametrize(
    "value",
    ["AB1", "X" * 65, "330106_XK_0001", "330106-XK-0001/1", "事项330106"],
)
def test_malformed_service_codes(tmp_path: Path, value: str) -> None:
    result = load_table(write_xlsx(tmp_path / "t.xlsx", [GOOD, bad(事项编码=value)]))
    assert triples(result.errors) == {("R-SERVICE-CODE-MALFORMED", 3, "事项编码")}


@pytest.mark.parametrize(
    ("column", "value"),
    [("机构问题代码", "X K"), ("机构问题代码", "xk"), ("门类代码", "WS-1"), ("门类代码", "ABCDEFGHI")],
)
def test_archival_code_parts(tmp_path: Path, column: str, value: str) -> None:
    result = load_table(write_xlsx(tmp_path / "t.xlsx", [GOOD, bad(**{column: value})]))
    assert triples(result.errors) == {("R-CODE-PART-INVALID", 3, column)}


def test_conflict_names_both_rows_and_duplicate_warns(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "保管期限": "10年"},  # row 3: same key, open window, different period
        {"事项类型": "05", "归档范围": "归档", "保管期限": "永久", "生效日期": "2020-01-01", "失效日期": "2025-01-01"},
        {
            "事项类型": "行政给付",
            "归档范围": "归档",
            "保管期限": "永久",
            "生效日期": "2024-06-01",
        },  # overlaps row 4, same
        {"事项类型": "05", "归档范围": "归档", "保管期限": "30年", "生效日期": "2025-01-01"},  # after row 4 ends: fine
    ]
    result = load_table(write_xlsx(tmp_path / "t.xlsx", rows))
    # rows 5 and 6 overlap from 2025-01-01 on and disagree: a conflict too; 4 and 6 touch but do not overlap
    assert triples(result.errors) == {("R-RULE-CONFLICT", 3, "保管期限"), ("R-RULE-CONFLICT", 6, "保管期限")}
    first, second = result.errors
    assert (first.details["other_row"], second.details["other_row"]) == (2, 5)
    assert "rows 2 and 3" in first.message and "rows 5 and 6" in second.message
    assert triples(result.warnings) == {("R-RULE-DUPLICATE", 5, "归档范围")}


def test_overlapping_type_windows_conflict(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {"事项类型": "05", "归档范围": "归档", "保管期限": "永久", "生效日期": "2020-01-01", "失效日期": "2025-06-01"},
        {"事项类型": "05", "归档范围": "归档", "保管期限": "30年", "生效日期": "2025-01-01"},
        {"事项类型": "05", "实施机构": "西湖区民政局", "归档范围": "不归档"},  # more specific: no conflict
    ]
    result = load_table(write_xlsx(tmp_path / "t.xlsx", rows))
    assert triples(result.findings) == {("R-RULE-CONFLICT", 4, "保管期限")}
    assert result.errors[0].details["other_row"] == 3


def test_header_findings(tmp_path: Path) -> None:
    header = ["事项编码", "事项类型", "归档范围", "备注", "scope"]
    result = load_table(write_xlsx(tmp_path / "t.xlsx", [{"事项编码": "330106-XK-0001", "归档范围": "不归档"}], header))
    assert triples(result.findings) == {
        ("R-COLUMN-MISSING", 1, "保管期限"),
        ("R-COLUMN-UNKNOWN", 1, "备注"),
        ("R-COLUMN-DUPLICATE", 1, "scope"),
    }
    # a table of default rules only needs no 事项编码/事项类型 column
    only_default = load_table(
        write_xlsx(tmp_path / "n.xlsx", [{"归档范围": "归档", "保管期限": "10年"}], ["归档范围", "保管期限"])
    )
    assert only_default.findings == [] and only_default.table.rules[0].level == 0


def test_every_defect_in_one_workbook(tmp_path: Path) -> None:
    rows = [GOOD] + [case[1] for case in CASES] + [{**GOOD, "保管期限": "永久"}]
    header = [*HEADER, "备注"]
    result = load_table(write_xlsx(tmp_path / "all.xlsx", rows, header))
    expected = {(code, i + 3, column) for i, (code, _, column, _) in enumerate(CASES)}
    expected |= {("R-RULE-CONFLICT", len(rows) + 1, "保管期限"), ("R-COLUMN-UNKNOWN", 1, "备注")}
    assert triples(result.findings) == expected
    report = result.report.to_dict()
    assert set(report) == {"errors", "warnings", "rules"}
    assert all(set(e) == {"sheet", "row", "column", "value", "message"} for e in report["errors"] + report["warnings"])
    # row 2, the three warning-only rows and the last row (a conflict is between good rows; both stay)
    assert report["rules"] == 2 + sum(1 for case in CASES if case[3] == Severity.WARNING)
    json.dumps(report, ensure_ascii=False)


def test_blank_rows_keep_excel_numbering(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "t.xlsx", [GOOD, None, None, bad(保管期限="20年")])
    assert triples(load_table(path).findings) == {("R-PERIOD-UNKNOWN", 5, "保管期限")}


def test_only_first_sheet_is_read_and_other_table_sheets_warned(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "t.xlsx", [GOOD])
    wb = openpyxl.load_workbook(path)
    other = wb.create_sheet("第二批")
    other.append(HEADER)
    other.append([bad(保管期限="20年").get(h) for h in HEADER])
    wb.create_sheet("说明").append(["本表说明"])
    wb.save(path)
    result = load_table(path)
    assert triples(result.findings) == {("R-SHEET-IGNORED", 1, None)}
    assert result.findings[0].details["sheet"] == "第二批"
    assert [r.row for r in result.table.rules] == [2]


def write_csv(path: Path, rows: list[dict], encoding: str, header: list[str] = HEADER) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(["" if row.get(h) is None else row.get(h) for h in header])
    return path


SAMPLE = [
    {**GOOD, "事项名称": "食品经营许可", "实施机构": "西湖区市场监督管理局", "依据": "《文书档案保管期限表》第3条"},
    {"事项编码": "330106-XK-0001", "材料类别": "过程", "归档范围": "不归档"},
    {"事项类型": "行政确认", "归档范围": "归档", "保管期限": "D10", "生效日期": "2026-01-01"},
    {"归档范围": "归档", "保管期限": "10年", "依据": "兜底规则"},
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings_read_alike_and_hash_like_xlsx(tmp_path: Path, encoding: str) -> None:
    xlsx = load_table(write_xlsx(tmp_path / "t.xlsx", SAMPLE))
    result = load_table(write_csv(tmp_path / "t.csv", SAMPLE, encoding))
    assert result.findings == []
    assert result.table.rules[0].service_name == "食品经营许可"
    assert result.table.rules[0].basis == "《文书档案保管期限表》第3条"
    assert result.table.content_hash == xlsx.table.content_hash
    assert result.table.to_records() != [] and len(result.table.rules) == 4


def test_gb18030_is_really_not_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", SAMPLE, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert load_table(path).ok


def test_undecodable_and_unknown_files(tmp_path: Path) -> None:
    junk = tmp_path / "t.csv"
    junk.write_bytes(b"\x81\x30\xff\xff\xfe,\x80\n")
    assert [f.code for f in load_table(junk).errors] == ["R-FILE-UNREADABLE"]
    notxlsx = tmp_path / "t.xlsx"
    notxlsx.write_text("plain text")
    assert [f.code for f in load_table(notxlsx).errors] == ["R-FILE-UNREADABLE"]
    assert [f.code for f in load_table(tmp_path / "missing.yaml").errors] == ["R-FILE-UNREADABLE"]
    odd = tmp_path / "t.json"
    odd.write_text("[]")
    assert [f.code for f in load_table(odd).errors] == ["R-FILE-UNREADABLE"]
    empty = write_csv(tmp_path / "e.csv", [], "utf-8")
    assert [f.code for f in load_table(empty).errors] == ["R-TABLE-EMPTY"]


def test_yaml_with_english_aliases_hashes_like_xlsx(tmp_path: Path) -> None:
    alias = {
        "事项编码": "service_code",
        "事项名称": "service_name",
        "事项类型": "matter_type",
        "实施机构": "agency",
        "材料类别": "group",
        "归档范围": "scope",
        "保管期限": "retention_period",
        "生效日期": "effective_date",
        "依据": "basis",
        "机构问题代码": "org_code",
    }
    items = [{alias[k]: (date.fromisoformat(v) if k == "生效日期" else v) for k, v in row.items()} for row in SAMPLE]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    result = load_table(path)
    assert result.findings == []
    assert result.table.content_hash == load_table(write_xlsx(tmp_path / "t.xlsx", SAMPLE)).table.content_hash
    bad_yaml = tmp_path / "b.yaml"
    bad_yaml.write_text(
        yaml.safe_dump([items[0], "not a row", {**items[0], "retention_period": "20年"}], allow_unicode=True)
    )
    assert triples(load_table(bad_yaml).findings) == {
        ("R-FILE-STRUCTURE", 3, None),
        ("R-PERIOD-UNKNOWN", 4, "retention_period"),
    }


def test_records_round_trip_and_version_label(tmp_path: Path) -> None:
    table = load_table(write_xlsx(tmp_path / "t.xlsx", SAMPLE)).table
    assert table.version == table.content_hash[:12]
    records = json.loads(json.dumps(table.to_records(), ensure_ascii=False))
    again = RetentionTable.from_records(records, version="v7")
    assert again.content_hash == table.content_hash and again.rules == table.rules
    assert again.version == "v7"
    again.version = None
    assert again.version == table.version
    changed = load_records([None, {**SAMPLE[0], "保管期限": "永久"}, *SAMPLE[1:]]).table
    assert changed.content_hash != table.content_hash
    with pytest.raises(RetentionTableError, match="row 2"):
        RetentionTable.from_records([{**records[0], "period": "D20"}])
    with pytest.raises(RetentionTableError, match="row 2 twice"):
        RetentionTable.from_records([records[0], records[0]])


def test_five_thousand_rows_validate_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("表")
    ws.append(HEADER)
    periods = ["永久", "30年", "10年"]
    for i in range(5000):
        ws.append(
            [
                f"330106-ZZ-{i:05d}",
                f"事项{i}",
                f"{1 + i % 10:02d}",
                f"机构{i % 40}",
                "",
                "归档",
                periods[i % 3],
                "WS",
                "AB",
                date(2020, 1, 1),
                None,
                "依据",
            ]
        )
    ws.append(["330106-ZZ-00007", "", "01", "", "", "归档", "20年", "WS", "", "", "", ""])
    wb.save(path)
    start = time.process_time()  # CPU time: tests running beside this one (pytest-xdist) do not lengthen it
    report = validate_table(path)
    elapsed = time.process_time() - start
    assert report.rules == 5000
    assert [(e["row"], e["column"]) for e in report.to_dict()["errors"]] == [(5002, "保管期限")]
    assert elapsed < 5.0, f"5,000-row workbook took {elapsed:.2f} s"
    print(f"5,000-row workbook validated in {elapsed:.2f} s of CPU")
