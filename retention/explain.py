"""Explaining a retention decision to an archivist: for one key (`explain`) or one matter, group by
group (`explain_matter`).

Both are views of `retention.decision` with its trace, so what they say is what `appraise`
decides. `guidang retention explain` prints them; the package's 元数据.xml (保管信息: 保管期限表版本,
规则行号) must name the same version and row as `explain_matter`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from retention.decision import Decision, GroupDecision, PassedOver, RuleKey, combine, decide
from retention.match import disposition_date
from retention.table import (
    LEVEL_CODE_GROUP,
    LEVEL_NAMES,
    LEVEL_NAMES_EN,
    RetentionTable,
    Rule,
    as_date,
    fold_width,
    type_codes,
)
from retention.validate import parse_group, parse_matter_type
from schemas.model import DocumentGroup, Matter


def _rule_view(rule: Rule, level: int) -> dict[str, Any]:
    return {
        **rule.to_record(),
        "level": level,
        "level_name": LEVEL_NAMES[level],
        "level_name_en": LEVEL_NAMES_EN[level],
    }


def _passed_view(p: PassedOver) -> dict[str, Any]:
    return {**_rule_view(p.rule, p.level), "why": p.why}


def _label(group: DocumentGroup | None) -> str:
    return group.value if group else "全部"


def _query_key(
    service_code: str | None,
    matter_type: str | None,
    agency: str | None,
    group: str | DocumentGroup | None,
    on_date: date | datetime | str,
) -> RuleKey:
    """The key of a question as an archivist asks it: 事项类型 as a code or a name (a name may stand
    for several codes), 材料类别 in any spelling the table accepts; ValueError when unknown."""
    codes: tuple[str, ...] = ()
    if matter_type:
        parsed = parse_matter_type(fold_width(matter_type))
        if parsed is None:
            raise ValueError(f"unknown 事项类型 {matter_type!r}")
        codes = type_codes(parsed)
    group_short: str | None = None
    if group is not None:
        if isinstance(group, DocumentGroup):
            group_short = group.short
        else:
            known, group_short = parse_group(fold_width(group))
            if not known:
                raise ValueError(f"unknown 材料类别 {group!r} (expected 申报, 过程, 结果 or 全部)")
    return RuleKey(
        fold_width(service_code) if service_code else None,
        codes,
        fold_width(agency) if agency else None,
        group_short,
        as_date(on_date),
    )


def _explained(table: RetentionTable, d: Decision) -> dict[str, Any]:
    key, on = d.key, d.key.on
    group_rules: list[dict[str, Any]] = []
    if key.service_code and key.group is None:
        for r in table.index.any_by_code.get(key.service_code, ()):
            if r.group and r.in_force(on):
                group_rules.append(_rule_view(r, LEVEL_CODE_GROUP))
    if d.rule is not None:
        rule = d.rule
        outcome = rule.scope + (f" {rule.period.label} ({rule.period.value})" if rule.period else "")
        message = f"row {rule.row} decides ({LEVEL_NAMES[d.level or 0]}): {outcome}"
    elif d.ambiguous:
        message = f"rows {', '.join(str(r.row) for r in d.ambiguous)} are equally specific and disagree"
    else:
        message = "no rule applies on this date"
    return {
        "query": {
            "service_code": key.service_code,
            "matter_type": ",".join(key.type_codes) or None,
            "agency": key.agency,
            "group": key.group,
            "date": on.isoformat(),
            "table_version": table.version,
        },
        "status": d.status,
        "decision": _rule_view(d.rule, d.level or 0) if d.rule is not None else None,
        "lost": [_passed_view(p) for p in d.lost],
        "ambiguous": [_rule_view(r, d.level or 0) for r in d.ambiguous],
        "not_in_force": [_passed_view(p) for p in d.not_in_force],
        "group_rules": group_rules,
        "message": message,
    }


def explain(
    table: RetentionTable,
    *,
    service_code: str | None = None,
    matter_type: str | None = None,
    agency: str | None = None,
    group: str | DocumentGroup | None = None,
    on_date: date | datetime | str,
) -> dict[str, Any]:
    """Why the table decides what it decides for one matter type (and group) on a date, JSON-able.

    Returns {"query", "status" ("decided" | "no_rule" | "ambiguous"), "decision" (the deciding rule
    with its level) or None, "lost" (rules that also matched and why they lost), "ambiguous" (the
    disagreeing rules, if any), "not_in_force" (rules for the same key outside their dates),
    "group_rules" (事项编码+材料类别 rules in force, when no group was asked), "message"}.
    `matter_type` may be a code or a name; raises ValueError for an unknown type or group.
    """
    key = _query_key(service_code, matter_type, agency, group, on_date)
    return _explained(table, decide(table.index, key, trace=True))


def explain_matter(table: RetentionTable, matter: Matter) -> dict[str, Any]:
    """Which rule of `table` decides `matter`, and why, as `appraise` decides it for the package.

    Each document group present is explained on its own (事项编码+材料类别 first, then the
    matter-level levels); the groups are combined as `appraise` combines them
    (`retention.decision.combine`). Returns {"matter", "date", "table_version", "status"
    ("decided" | "no_rule" | "ambiguous"), "decision": {"row", "level_name", "scope", "period",
    "period_label", "disposition_date", "excluded_groups", "decided_by_group", "rule"} or None,
    "groups": {group or "全部": explain()}, "message"}. The package's 保管信息 (保管期限表版本,
    规则行号) must equal table_version and decision["row"]."""
    on = matter.completed_at.date()
    present = {d.group for d in matter.documents}
    groups: list[DocumentGroup | None] = [g for g in DocumentGroup if g in present] or [None]
    explained: dict[str, dict[str, Any]] = {}
    decided: list[GroupDecision] = []
    for g in groups:
        key = _query_key(matter.service_code, matter.matter_type, matter.agency, g, on)
        d = decide(table.index, key, trace=True)
        explained[_label(g)] = _explained(table, d)
        decided.append((g, d))
    package = combine(decided)
    base = {"matter": matter.key, "date": on.isoformat(), "table_version": table.version, "groups": explained}
    if package.decision is None:
        return {
            **base,
            "status": package.status,
            "decision": None,
            "message": "; ".join(f"{_label(g)}: {explained[_label(g)]['message']}" for g, _ in package.failed),
        }
    by = _label(package.decided_by)
    rule = explained[by]["decision"]
    period = package.period
    outcome = f"归档 {period.label} ({period.value})" if period else "不归档"
    return {
        **base,
        "status": "decided",
        "decision": {
            "row": rule["row"],
            "level_name": rule["level_name"],
            "scope": "归档" if period else "不归档",
            "period": period.value if period else None,
            "period_label": period.label if period else None,
            "disposition_date": disposition_date(matter.completed_at.year, period) if period else None,
            "excluded_groups": [gg.value for gg in package.excluded_groups],
            "decided_by_group": by,
            "rule": rule,
        },
        "message": f"保管期限表 {table.version} 行 {rule['row']} decides ({rule['level_name']}): {outcome}",
    }
