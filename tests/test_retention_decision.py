"""The one decision: `decide` names the deciding rule and, when asked, every rule it passed over and
why; `combine` makes the package's decision from its groups'; `appraise`, `explain` and
`explain_matter` say the same because they are built on these two."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from retention import AppraisalError, RetentionTable, appraise, explain, explain_matter, load_records
from retention.decision import Decision, RuleKey, combine, decide
from retention.table import LEVEL_CODE, LEVEL_CODE_GROUP, LEVEL_DEFAULT, LEVEL_TYPE, LEVEL_TYPE_AGENCY, Rule
from schemas.model import Applicant, Document, DocumentGroup, Matter, RetentionPeriod

CODE = "330106-XK-0001"
AGENCY = "西湖区市场监督管理局"
ON = date(2026, 5, 3)


def table(*rows: dict) -> RetentionTable:
    result = load_records(list(rows), source="test")
    assert result.errors == [], [str(f) for f in result.errors]
    return result.table


def unchecked(*rows: dict) -> RetentionTable:
    """A stored table is rebuilt without the table checks, so it may hold disagreeing rules."""
    return RetentionTable.from_records(load_records(list(rows)).table.to_records())


BY_CODE = {"事项编码": CODE, "归档范围": "归档", "保管期限": "10年"}
BY_TYPE_AGENCY = {"事项类型": "01", "实施机构": AGENCY, "归档范围": "归档", "保管期限": "永久"}
BY_TYPE = {"事项类型": "01", "归档范围": "归档", "保管期限": "30年"}
DEFAULT = {"归档范围": "归档", "保管期限": "10年"}


def key(group: str | None = None, codes: tuple[str, ...] = ("01",), on: date = ON) -> RuleKey:
    return RuleKey(CODE, codes, AGENCY, group, on)


def test_trace_names_the_losing_rules_and_why() -> None:
    t = table(
        BY_CODE,  # 2: decides
        {**BY_CODE, "依据": "另一依据"},  # 3: same level, same outcome, later row
        BY_TYPE_AGENCY,  # 4
        {**BY_TYPE, "失效日期": "2026-01-01"},  # 5: expired
        {**BY_TYPE, "保管期限": "10年", "生效日期": "2026-01-01"},  # 6
        DEFAULT,  # 7
        {**BY_CODE, "材料类别": "结果", "保管期限": "永久", "生效日期": "2027-01-01"},  # 8: not yet
    )
    d = decide(t.index, key("结果"), trace=True)
    assert (d.status, d.level, d.rule and d.rule.row) == ("decided", LEVEL_CODE, 2)
    assert [(p.rule.row, p.level, p.why) for p in d.lost] == [
        (3, LEVEL_CODE, "same level, same outcome; row 2 comes first"),
        (4, LEVEL_TYPE_AGENCY, "less specific: 事项类型+实施机构 is below 事项编码"),
        (6, LEVEL_TYPE, "less specific: 事项类型 is below 事项编码"),
        (7, LEVEL_DEFAULT, "less specific: 默认 is below 事项编码"),
    ]
    assert [(p.rule.row, p.level, p.why) for p in d.not_in_force] == [
        (8, LEVEL_CODE_GROUP, "not in force: 生效日期 2027-01-01 is after 2026-05-03"),
        (5, LEVEL_TYPE, "not in force: 失效日期 2026-01-01 is on or before 2026-05-03"),
    ]
    # without the trace: the same decision, nothing else collected
    bare = decide(t.index, key("结果"))
    assert (bare.level, bare.rule) == (d.level, d.rule)
    assert bare.lost == () and bare.not_in_force == ()


def test_disagreeing_rules_stop_the_walk() -> None:
    t = unchecked(BY_CODE, {**BY_CODE, "保管期限": "30年"}, BY_TYPE)
    d = decide(t.index, key(), trace=True)
    assert d.status == "ambiguous" and d.rule is None and d.level == LEVEL_CODE
    assert [r.row for r in d.ambiguous] == [2, 3]
    # the less specific rule is not taken instead; it is reported as lost
    assert [(p.rule.row, p.why) for p in d.lost] == [(4, "less specific: 事项类型 is below 事项编码")]
    assert decide(t.index, key()).ambiguous == d.ambiguous


def test_no_rule_and_several_type_codes() -> None:
    t = table({"事项类型": "公共服务", "归档范围": "不归档", "保管期限": ""})
    assert decide(t.index, key()).status == "no_rule"
    for codes in (("11",), ("20",), ("11", "20")):
        d = decide(t.index, key(codes=codes), trace=True)
        assert (d.level, d.rule and d.rule.row, d.lost) == (LEVEL_TYPE, 2, ())


def rule(row: int, period: RetentionPeriod | None, level: int) -> tuple[Rule, int]:
    return Rule(row=row, archived=period is not None, period=period), level


def test_combine_keeps_the_longest_period_then_the_more_specific_then_the_lower_row() -> None:
    def decided(*rules: tuple[Rule, int]) -> list:
        groups = list(DocumentGroup)
        return [(groups[i], Decision(key(), lvl, r)) for i, (r, lvl) in enumerate(rules)]

    p = combine(
        decided(
            rule(2, RetentionPeriod.D30, LEVEL_CODE),
            rule(3, None, LEVEL_CODE_GROUP),
            rule(4, RetentionPeriod.PERMANENT, LEVEL_TYPE),
        )
    )
    assert (p.status, p.rule and p.rule.row, p.period) == ("decided", 4, RetentionPeriod.PERMANENT)
    assert p.decided_by == DocumentGroup.RESULT
    assert p.excluded_groups == (DocumentGroup.PROCESS,)
    tie = combine(decided(rule(2, RetentionPeriod.D30, LEVEL_TYPE), rule(5, RetentionPeriod.D30, LEVEL_CODE_GROUP)))
    assert tie.rule and tie.rule.row == 5
    rows = combine(decided(rule(3, RetentionPeriod.D30, LEVEL_CODE), rule(2, RetentionPeriod.D30, LEVEL_CODE)))
    assert rows.rule and rows.rule.row == 2
    nothing = combine(decided(rule(2, None, LEVEL_TYPE), rule(3, None, LEVEL_CODE_GROUP)))
    assert (nothing.rule and nothing.rule.row, nothing.period) == (3, None)
    assert nothing.excluded_groups == (DocumentGroup.APPLICATION, DocumentGroup.PROCESS)


def test_combine_reports_every_undecided_group_in_order() -> None:
    r = Rule(row=2, archived=True, period=RetentionPeriod.D10)
    p = combine(
        [
            (DocumentGroup.APPLICATION, Decision(key())),
            (DocumentGroup.PROCESS, Decision(key(), LEVEL_CODE, r)),
            (DocumentGroup.RESULT, Decision(key(), LEVEL_CODE, ambiguous=(r, r))),
        ]
    )
    assert [g for g, _ in p.failed] == [DocumentGroup.APPLICATION, DocumentGroup.RESULT]
    assert (p.status, p.decision, p.rule, p.period) == ("ambiguous", None, None, None)


def test_appraise_explain_and_explain_matter_agree_on_random_tables() -> None:
    """One decision under three views: on random tables (disagreeing rules allowed) the recorded
    row, the error and the explanation always name the same rule or the same failing group."""
    rnd = random.Random(5)
    codes = [CODE, "330106-XK-0002"]
    tz = timezone(timedelta(hours=8))
    for _ in range(150):
        rows = []
        for _ in range(rnd.randint(1, 8)):
            r: dict = {"归档范围": "归档", "保管期限": rnd.choice(["永久", "30年", "10年"])}
            if rnd.random() < 0.2:
                r = {"归档范围": "不归档", "保管期限": ""}
            level = rnd.randrange(5)
            if level >= 3:
                r["事项编码"] = rnd.choice(codes)
                if level == 4:
                    r["材料类别"] = rnd.choice(["申报", "过程", "结果"])
            elif level >= 1:
                r["事项类型"] = rnd.choice(["01", "公共服务"])
                if level == 2:
                    r["实施机构"] = AGENCY
            r["生效日期"] = rnd.choice([None, "2026-01-01"])
            rows.append({k: v for k, v in r.items() if v is not None})
        t = unchecked(*rows)
        groups = rnd.sample(list(DocumentGroup), rnd.randint(0, 3))
        completed = datetime(rnd.choice([2025, 2026]), 6, 1, tzinfo=tz)
        m = Matter(
            source="u",
            project_id="P1",
            service_code=rnd.choice(codes),
            service_name="x",
            matter_type=rnd.choice(["01", "11", "20", "07"]),
            agency=AGENCY,
            applicant=Applicant(name="张三"),
            completed_at=completed,
            updated_at=completed,
            documents=[Document(group=g, title="t", file_name=f"{i}.pdf", locator="l") for i, g in enumerate(groups)],
        )
        e = explain_matter(t, m)
        try:
            a = appraise(t, m)
        except AppraisalError as exc:
            assert e["decision"] is None
            first_bad = next(g["status"] for g in e["groups"].values() if g["status"] != "decided")
            assert exc.code == {"ambiguous": "Q-RETENTION-AMBIGUOUS", "no_rule": "Q-RETENTION-NO-RULE"}[first_bad]
            continue
        assert e["status"] == "decided" and e["decision"]["row"] == a.rule_row
        assert e["decision"]["period"] == (a.retention_period.value if a.retention_period else None)
        assert e["decision"]["excluded_groups"] == [g.value for g in a.excluded_groups]
        for name, g in e["groups"].items():
            group = None if name == "全部" else DocumentGroup(name)
            asked = {"service_code": m.service_code, "matter_type": m.matter_type, "agency": m.agency}
            assert explain(t, **asked, group=group, on_date=completed) == g


def test_explain_refuses_unknown_inputs_before_deciding() -> None:
    t = table(DEFAULT)
    with pytest.raises(ValueError, match="材料类别"):
        explain(t, group="附件", on_date=ON)
