"""Coverage of a catalogue, diff of two versions, and the XLSX template and writer."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import openpyxl

from guidang_demo.catalogue import DEMO_CATALOGUE
from retention import (
    COLUMNS,
    coverage,
    diff_tables,
    load_catalogue,
    load_records,
    load_table,
    write_table_xlsx,
    write_template,
)
from retention.template import LISTS_SHEET

TYPES = ["01", "02", "05", "07", "10", "20"]
AGENCIES = [f"西湖区机构{k}" for k in range(8)]


def catalogue_rows(n: int) -> list[dict]:
    return [
        {
            "事项编码": f"330106-CT-{i:05d}",
            "事项名称": f"事项{i}",
            "事项类型": TYPES[i % len(TYPES)],
            "实施机构": AGENCIES[i % len(AGENCIES)],
        }
        for i in range(n)
    ]


def test_coverage_of_5200_types_lists_exactly_those_without_rule(tmp_path: Path) -> None:
    entries = catalogue_rows(5200)
    rules: list[dict] = []
    for i, e in enumerate(entries):
        if i % 5 == 0:
            rules.append({"事项编码": e["事项编码"], "归档范围": "归档", "保管期限": "30年"})
        if i % 7 == 0:  # only a group rule: still covered
            rules.append({"事项编码": e["事项编码"], "材料类别": "结果", "归档范围": "归档", "保管期限": "永久"})
        if i % 11 == 0 and i % 5:  # only in force from 2030: not covered on the coverage date
            rules.append(
                {"事项编码": e["事项编码"], "归档范围": "归档", "保管期限": "10年", "生效日期": date(2030, 1, 1)}
            )
    rules += [
        {"事项类型": "行政处罚", "归档范围": "归档", "保管期限": "永久"},
        {"事项类型": "07", "实施机构": AGENCIES[3], "归档范围": "归档", "保管期限": "10年"},
        {"事项类型": "公共服务", "归档范围": "不归档"},  # a 不归档 rule is a decision: covered
        {"事项类型": "10", "归档范围": "归档", "保管期限": "10年", "失效日期": "2020-01-01"},  # expired
    ]
    write_table_xlsx(tmp_path / "table.xlsx", rules)
    loaded = load_table(tmp_path / "table.xlsx")
    assert loaded.ok, [str(f) for f in loaded.errors]

    with (tmp_path / "catalogue.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["事项编码", "事项名称", "事项类型", "实施机构"])
        w.writeheader()
        w.writerows(entries)
    items, findings = load_catalogue(tmp_path / "catalogue.csv")
    assert findings == [] and len(items) == 5200

    def expected_covered(i: int, e: dict) -> bool:
        t = e["事项类型"]
        return i % 5 == 0 or i % 7 == 0 or t in ("02", "20") or (t == "07" and e["实施机构"] == AGENCIES[3])

    report = coverage(loaded.table, items, "2026-05-03").to_dict()
    json.dumps(report, ensure_ascii=False)
    expected = [e["事项编码"] for i, e in enumerate(entries) if not expected_covered(i, e)]
    assert report["uncovered"] == expected
    assert report["catalogue"] == 5200 and report["covered"] == 5200 - len(expected)
    for bucket in ("by_agency", "by_matter_type"):
        assert sum(v["uncovered"] for v in report[bucket].values()) == len(expected)
        assert sum(v["catalogue"] for v in report[bucket].values()) == 5200
    assert report["by_matter_type"]["02"]["uncovered"] == 0
    assert report["by_matter_type"]["10"]["covered"] == sum(
        1 for i, e in enumerate(entries) if e["事项类型"] == "10" and (i % 5 == 0 or i % 7 == 0)
    )
    # in 2031 the i % 11 code rules are in force
    later = coverage(loaded.table, items, "2031-01-01")
    assert later.covered == report["covered"] + sum(
        1 for i, e in enumerate(entries) if i % 11 == 0 and not expected_covered(i, e)
    )


def test_coverage_of_the_demo_catalogue(tmp_path: Path) -> None:
    rows = []
    for e in DEMO_CATALOGUE:
        if not e.retention:
            continue
        archived = e.retention != "不归档"
        rows.append(
            {
                "事项编码": e.service_code,
                "事项名称": e.service_name,
                "事项类型": e.matter_type,
                "实施机构": e.agency,
                "归档范围": "归档" if archived else "不归档",
                "保管期限": e.retention if archived else None,
                "机构问题代码": e.org_code,
            }
        )
    write_table_xlsx(tmp_path / "demo.xlsx", rows)
    result = load_table(tmp_path / "demo.xlsx")
    assert result.findings == []
    report = coverage(result.table, DEMO_CATALOGUE, date(2026, 5, 3))
    assert report.uncovered == [e.service_code for e in DEMO_CATALOGUE if not e.retention]


def test_catalogue_findings(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["事项编码", "事项名称", "事项类型", "实施机构", "备注"])
    ws.append(["330106-XK-0001", "食品经营许可", "行政许可", "西湖区市场监督管理局", ""])
    ws.append(["330106 XK", "坏编码", "01", "x", ""])
    ws.append(["330106-XK-0003", "坏类型", "99", "x", ""])
    wb.save(tmp_path / "c.xlsx")
    items, findings = load_catalogue(tmp_path / "c.xlsx")
    assert [(i.service_code, i.matter_type, i.row) for i in items] == [
        ("330106-XK-0001", "01", 2),
        ("330106-XK-0003", None, 4),
    ]
    assert {(f.code, f.details["row"], f.details["column"]) for f in findings} == {
        ("R-COLUMN-UNKNOWN", 1, "备注"),
        ("R-CATALOGUE-INVALID", 3, "事项编码"),
        ("R-CATALOGUE-INVALID", 4, "事项类型"),
    }


def test_diff_in_archivists_terms() -> None:
    a = {"事项编码": "330106-XK-0001", "归档范围": "归档", "保管期限": "30年", "依据": "第3条"}
    b = {"事项编码": "330106-XK-0002", "归档范围": "归档", "保管期限": "10年"}
    c = {"事项类型": "01", "归档范围": "归档", "保管期限": "永久"}
    d = {"事项编码": "330106-XK-0004", "材料类别": "过程", "归档范围": "不归档"}
    old = load_records([a, b, c]).table
    new = load_records([c, {**a, "保管期限": "永久", "依据": "第4条"}, d, {**b, "生效日期": "2027-01-01"}]).table
    diff = diff_tables(old, new)
    json.dumps(diff, ensure_ascii=False)
    assert diff["summary"] == {"added": 2, "removed": 1, "changed": 1, "unchanged": 1}
    (changed,) = diff["changed"]
    assert changed["key"]["事项编码"] == "330106-XK-0001"
    assert (changed["old_row"], changed["new_row"]) == (2, 3)
    assert changed["changes"] == {"保管期限": {"from": "30年", "to": "永久"}, "依据": {"from": "第3条", "to": "第4条"}}
    assert [r["事项编码"] for r in diff["added"]] == ["330106-XK-0004", "330106-XK-0002"]
    assert diff["added"][1]["生效日期"] == "2027-01-01"
    assert [r["行"] for r in diff["removed"]] == [3]
    assert diff_tables(old, old)["summary"] == {"added": 0, "removed": 0, "changed": 0, "unchanged": 3}


def test_template_headers_comments_and_dropdowns(tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    header_row = int(ws.print_title_rows.replace("$", "").split(":")[0])  # below the title block
    headers = [c.value for c in ws[header_row]]
    assert headers == list(COLUMNS.values())
    assert all(c.comment is not None and len(c.comment.text) > 5 for c in ws[header_row])
    lists = wb[LISTS_SHEET]
    assert lists.sheet_state == "hidden"
    by_column = {}
    for dv in ws.data_validations.dataValidation:
        letter = str(dv.sqref).split(":")[0].rstrip("0123456789")
        column = headers[openpyxl.utils.column_index_from_string(letter) - 1]
        ref = dv.formula1.split("!")[1].replace("$", "")
        choices = [c.value for row in lists[ref] for c in row]
        by_column[column] = choices
        assert dv.type == "list"
    assert set(by_column) == {"事项类型", "材料类别", "归档范围", "保管期限"}
    assert by_column["保管期限"] == ["永久", "30年", "10年"]
    assert "01 行政许可" in by_column["事项类型"]
    # every choice offered is one the loader accepts
    rows = [
        {
            "事项类型": t,
            "归档范围": "归档",
            "保管期限": "永久",
            "生效日期": f"20{10 + i}-01-01",
            "失效日期": f"20{11 + i}-01-01",
        }
        for i, t in enumerate(by_column["事项类型"])
    ]
    rows += [
        {"事项编码": f"330106-XK-{i:04d}", "材料类别": g, "归档范围": s, "保管期限": p if s == "归档" else None}
        for i, (g, s, p) in enumerate(
            (g, s, p) for g in by_column["材料类别"] for s in by_column["归档范围"] for p in by_column["保管期限"]
        )
    ]
    checked = load_records(rows)
    assert checked.findings == []
    # the template itself: its example row is one rule, named as such, and the hidden list sheet is
    # not taken for a table
    assert [f.code for f in load_table(path).findings] == ["R-EXAMPLE-ROW"]


def test_write_table_xlsx_round_trip(tmp_path: Path) -> None:
    rows = [
        {
            "事项编码": "330106-XK-0001",
            "事项名称": "食品经营许可",
            "事项类型": "01",
            "归档范围": "归档",
            "保管期限": "30年",
            "机构问题代码": "SJ",
            "生效日期": date(2026, 1, 1),
            "依据": "第3条",
        },
        None,
        {"事项类型": "公共服务", "归档范围": "不归档", "备注": "extra"},
    ]
    write_table_xlsx(tmp_path / "t.xlsx", rows)
    result = load_table(tmp_path / "t.xlsx")
    assert [(f.code, f.details["column"]) for f in result.findings] == [("R-COLUMN-UNKNOWN", "备注")]
    r2, r4 = result.table.rules
    assert (r2.row, r2.effective_date, r2.org_code, r2.period.value) == (2, date(2026, 1, 1), "SJ", "D30")
    assert (r4.row, r4.matter_type, r4.archived) == (4, "公共服务", False)
