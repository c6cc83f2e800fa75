"""Appraisal: precedence of the five levels, group overrides, dated rules, ambiguity, periods and
disposition dates, and the explanation archivists get."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from retention import AppraisalError, RetentionTable, appraise, explain, load_records
from schemas.model import Applicant, Document, DocumentGroup, Matter, RetentionPeriod

CODE = "330106-XK-0001"
AGENCY = "西湖区市场监督管理局"


def matter(
    code: str = CODE,
    mtype: str = "01",
    agency: str = AGENCY,
    completed: str = "2026-05-03T10:00:00+08:00",
    groups: tuple[str, ...] = ("申报材料", "过程材料", "结果材料"),
) -> Matter:
    return Matter(
        source="unified",
        project_id="P-0001",
        service_code=code,
        service_name="食品经营许可",
        matter_type=mtype,
        agency=agency,
        applicant=Applicant(name="张三", card_number="330106199001011234"),
        completed_at=datetime.fromisoformat(completed),
        updated_at=datetime.fromisoformat(completed),
        documents=[
            Document(group=g, title=f"材料{i}", file_name=f"{i}.pdf", locator=f"doc/{i}") for i, g in enumerate(groups)
        ],
    )


def table(*rows: dict) -> RetentionTable:
    """Rows as the archivist types them; row i of the call is sheet row i + 2."""
    result = load_records(list(rows), source="test")
    assert result.errors == [], [str(f) for f in result.errors]
    return result.table


DEFAULT = {"归档范围": "归档", "保管期限": "10年", "机构问题代码": "QT"}
BY_TYPE = {"事项类型": "01", "归档范围": "归档", "保管期限": "30年", "机构问题代码": "XK"}
BY_TYPE_AGENCY = {
    "事项类型": "行政许可",
    "实施机构": AGENCY,
    "归档范围": "归档",
    "保管期限": "永久",
    "机构问题代码": "SJ",
}
BY_CODE = {"事项编码": CODE, "归档范围": "归档", "保管期限": "D10", "机构问题代码": "AB", "依据": "第3条"}


def test_each_level_beats_the_one_below() -> None:
    levels = [DEFAULT, BY_TYPE, BY_TYPE_AGENCY, BY_CODE]
    expected = [
        ("QT", RetentionPeriod.D10),
        ("XK", RetentionPeriod.D30),
        ("SJ", RetentionPeriod.PERMANENT),
        ("AB", RetentionPeriod.D10),
    ]
    for n in range(1, len(levels) + 1):
        # the most specific rule is written first, so row order cannot be what decides
        rows = list(reversed(levels[:n]))
        a = appraise(table(*rows), matter())
        assert (a.org_code, a.retention_period) == expected[n - 1]
        assert a.rule_row == 2
        assert a.in_scope


def test_less_specific_levels_apply_when_the_matter_does_not_fit() -> None:
    t = table(BY_CODE, BY_TYPE_AGENCY, BY_TYPE, DEFAULT)
    assert appraise(t, matter()).rule_row == 2
    assert appraise(t, matter(code="330106-XK-0099")).rule_row == 3
    assert appraise(t, matter(code="330106-XK-0099", agency="西湖区民政局")).rule_row == 4
    assert appraise(t, matter(code="330106-XK-0099", mtype="07")).rule_row == 5
    # a full-width agency name in the source still matches
    assert appraise(t, matter(code="330106-XK-0099", agency=AGENCY + "\u3000")).rule_row == 3


def test_public_service_name_covers_both_codes() -> None:
    t = table({"事项类型": "公共服务", "归档范围": "不归档"}, DEFAULT)
    for code in ("11", "20"):
        a = appraise(t, matter(mtype=code))
        assert (a.in_scope, a.retention_period, a.rule_row) == (False, None, 2)
    assert appraise(t, matter(mtype="12")).rule_row == 3


def test_group_override_excludes_a_group_and_lengthens_a_period() -> None:
    t = table(
        {**BY_CODE, "保管期限": "30年"},
        {"事项编码": CODE, "材料类别": "过程", "归档范围": "不归档"},
        {"事项编码": CODE, "材料类别": "结果", "归档范围": "归档", "保管期限": "永久", "机构问题代码": "JG"},
    )
    a = appraise(t, matter())
    assert a.excluded_groups == [DocumentGroup.PROCESS]
    assert (a.retention_period, a.rule_row, a.org_code) == (RetentionPeriod.PERMANENT, 4, "JG")
    assert a.disposition_date is None
    # without result documents the 永久 override does not apply: the matter-level 30年 does
    b = appraise(t, matter(groups=("申报材料", "过程材料")))
    assert (b.retention_period, b.rule_row, b.excluded_groups) == (RetentionPeriod.D30, 2, [DocumentGroup.PROCESS])
    # only process documents, and they are not archived: the package is out of scope
    c = appraise(t, matter(groups=("过程材料",)))
    assert (c.in_scope, c.retention_period, c.rule_row, c.disposition_date) == (False, None, 3, None)


def test_group_rule_works_without_a_matter_level_rule_for_present_groups() -> None:
    t = table({"事项编码": CODE, "材料类别": "结果", "归档范围": "归档", "保管期限": "10年"})
    a = appraise(t, matter(groups=("结果材料",)))
    assert (a.retention_period, a.rule_row) == (RetentionPeriod.D10, 2)
    with pytest.raises(AppraisalError) as exc:
        appraise(t, matter(groups=("申报材料", "结果材料")))
    assert exc.value.code == "Q-RETENTION-NO-RULE"
    assert "申报材料" in str(exc.value)


def test_period_tie_goes_to_the_more_specific_rule() -> None:
    t = table(
        {**BY_TYPE, "保管期限": "30年"},
        {"事项编码": CODE, "材料类别": "申报", "归档范围": "归档", "保管期限": "30年", "机构问题代码": "SB"},
    )
    a = appraise(t, matter())
    assert (a.rule_row, a.org_code) == (3, "SB")


def test_rules_by_completion_date() -> None:
    t = table(
        {**BY_TYPE, "保管期限": "10年", "失效日期": "2026-01-01"},
        {**BY_TYPE, "保管期限": "30年", "生效日期": "2026-01-01", "失效日期": "2027-01-01"},
        {**BY_CODE, "保管期限": "永久", "生效日期": "2027-01-01"},
    )
    cases = {
        "2025-12-31T23:59:00+08:00": (2, RetentionPeriod.D10),
        "2026-01-01T00:00:00+08:00": (3, RetentionPeriod.D30),  # 生效日期 is inclusive
        "2026-12-31T12:00:00+08:00": (3, RetentionPeriod.D30),
        "2027-01-01T08:00:00+08:00": (4, RetentionPeriod.PERMANENT),  # 失效日期 is exclusive
    }
    for completed, (row, period) in cases.items():
        a = appraise(t, matter(completed=completed))
        assert (a.rule_row, a.retention_period) == (row, period), completed
    with pytest.raises(AppraisalError):
        appraise(t, matter(code="330106-XK-0002", completed="2027-03-01T08:00:00+08:00"))


def test_disposition_dates_and_year() -> None:
    t = table({**BY_CODE, "保管期限": "10年"})
    a = appraise(t, matter(completed="2026-05-03T10:00:00+08:00"))
    assert (a.year, a.disposition_date) == (2026, "2036-12-31")
    t30 = table({**BY_CODE, "保管期限": "30年"})
    assert appraise(t30, matter(completed="2024-12-31T23:00:00+08:00")).disposition_date == "2054-12-31"
    a = appraise(table({**BY_CODE, "保管期限": "永久"}), matter())
    assert (a.retention_period, a.disposition_date) == (RetentionPeriod.PERMANENT, None)


def test_default_row_and_appraisal_fields() -> None:
    t = table(BY_TYPE, {**DEFAULT, "门类代码": "KJ", "依据": "兜底"})
    t.version = "ledger-v3"
    a = appraise(t, matter(mtype="05"))
    assert (a.rule_row, a.category_code, a.org_code, a.rule_basis, a.table_version) == (
        3,
        "KJ",
        "QT",
        "兜底",
        "ledger-v3",
    )
    assert a.excluded_groups == []


def test_no_rule_error_names_the_matter() -> None:
    t = table(BY_CODE)
    with pytest.raises(AppraisalError) as exc:
        appraise(t, matter(code="330106-XK-0002", mtype="07", agency="西湖区民政局"))
    finding = exc.value.finding
    assert finding.code == "Q-RETENTION-NO-RULE" and finding.where == "unified/P-0001"
    for part in ("unified/P-0001", "330106-XK-0002", "07", "西湖区民政局", "2026-05-03"):
        assert part in finding.message
    assert "330106199001011234" not in finding.message


def test_ambiguity_names_both_rows() -> None:
    # from_records does not run the table checks: a stored table must still never be a coin toss
    records = load_records([BY_CODE, {**BY_CODE, "保管期限": "30年"}]).table.to_records()
    t = RetentionTable.from_records(records)
    with pytest.raises(AppraisalError) as exc:
        appraise(t, matter())
    assert exc.value.code == "Q-RETENTION-AMBIGUOUS"
    assert "rows 2, 3" in exc.value.finding.message
    assert exc.value.finding.details["rows"] == [2, 3]
    assert "unified/P-0001" in str(exc.value)
    # equal outcomes are no ambiguity: the lower row is recorded
    same = RetentionTable.from_records(table(BY_CODE, {**BY_CODE, "依据": "另一依据"}).to_records())
    assert appraise(same, matter()).rule_row == 2


def test_matter_without_documents_uses_the_matter_level_rule() -> None:
    t = table(BY_CODE, {"事项编码": CODE, "材料类别": "结果", "归档范围": "归档", "保管期限": "永久"})
    a = appraise(t, matter(groups=()))
    assert (a.rule_row, a.retention_period) == (2, RetentionPeriod.D10)


def test_explain() -> None:
    t = table(
        BY_CODE,
        BY_TYPE_AGENCY,
        {**BY_TYPE, "失效日期": "2030-01-01"},
        DEFAULT,
        {**BY_TYPE, "保管期限": "10年", "生效日期": "2030-01-01"},
        {"事项编码": CODE, "材料类别": "结果", "归档范围": "归档", "保管期限": "永久"},
    )
    e = explain(t, service_code=CODE, matter_type="行政许可", agency=AGENCY, on_date="2026-05-03")
    json.dumps(e, ensure_ascii=False)
    assert e["status"] == "decided"
    assert (e["decision"]["row"], e["decision"]["level_name"]) == (2, "事项编码")
    assert [(x["row"], x["level_name"]) for x in e["lost"]] == [(3, "事项类型+实施机构"), (4, "事项类型"), (5, "默认")]
    assert "less specific" in e["lost"][0]["why"]
    assert [x["row"] for x in e["not_in_force"]] == [6]
    assert [x["row"] for x in e["group_rules"]] == [7]
    g = explain(t, service_code=CODE, matter_type="01", agency=AGENCY, group="结果", on_date="2026-05-03")
    assert (g["decision"]["row"], g["decision"]["level_name"]) == (7, "事项编码+材料类别")
    assert g["lost"][0]["row"] == 2
    none = explain(table(BY_CODE), matter_type="07", on_date="2026-05-03")
    assert (none["status"], none["decision"]) == ("no_rule", None)
    amb = explain(
        RetentionTable.from_records(load_records([BY_TYPE, {**BY_TYPE, "保管期限": "永久"}]).table.to_records()),
        matter_type="01",
        on_date="2026-05-03",
    )
    assert amb["status"] == "ambiguous" and [x["row"] for x in amb["ambiguous"]] == [2, 3]
    with pytest.raises(ValueError, match="事项类型"):
        explain(t, matter_type="99", on_date="2026-05-03")
