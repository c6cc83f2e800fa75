"""Deciding a matter's retention (鉴定) from the table, and explaining a decision to an archivist.

Every look-up is a dict access on the table's `RuleIndex`, most specific level first, then a filter
of the handful of rules under that key by the completion date; there is no scan over the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from retention.table import (
    LEVEL_CODE,
    LEVEL_CODE_GROUP,
    LEVEL_DEFAULT,
    LEVEL_NAMES,
    LEVEL_NAMES_EN,
    LEVEL_TYPE,
    LEVEL_TYPE_AGENCY,
    PERIOD_RANK,
    RetentionTable,
    Rule,
    RuleIndex,
    as_date,
    fold_width,
    type_codes,
)
from retention.validate import parse_group, parse_matter_type
from schemas.findings import Finding, GuidangError
from schemas.model import MATTER_TYPES, Appraisal, DocumentGroup, Matter


class AppraisalError(GuidangError):
    """No rule, or two disagreeing rules, for a matter; `finding` carries the quarantine code
    (Q-RETENTION-NO-RULE or Q-RETENTION-AMBIGUOUS) and names the matter."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding), [finding])

    @property
    def finding(self) -> Finding:
        return self.findings[0]

    @property
    def code(self) -> str:
        return self.finding.code


_GROUP_ORDER: tuple[DocumentGroup, ...] = tuple(DocumentGroup)
_SHORT: Mapping[DocumentGroup, str] = MappingProxyType({g: g.short for g in DocumentGroup})


class _Ambiguous(Exception):
    def __init__(self, level: int, rules: list[Rule]) -> None:
        self.level = level
        self.rules = rules


def _in_force(rules: Sequence[Rule] | None, on: date) -> list[Rule]:
    if not rules:
        return []
    return [r for r in rules if r.in_force(on)]


def _one(candidates: list[Rule], level: int) -> Rule:
    """The rule of one level: the only one, or the lowest row among rules saying the same thing."""
    first = min(candidates, key=lambda r: r.row) if len(candidates) > 1 else candidates[0]
    if len(candidates) > 1 and any(r.outcome != first.outcome for r in candidates):
        raise _Ambiguous(level, sorted(candidates, key=lambda r: r.row))
    return first


def _matter_level(idx: RuleIndex, code: str, mtype: str, agency: str, on: date) -> tuple[int, Rule] | None:
    """The most specific 全部 rule: 事项编码 > 事项类型+实施机构 > 事项类型 > default."""
    for level, rules in (
        (LEVEL_CODE, idx.by_code.get(code)),
        (LEVEL_TYPE_AGENCY, idx.by_type_agency.get((mtype, agency))),
        (LEVEL_TYPE, idx.by_type.get(mtype)),
        (LEVEL_DEFAULT, idx.default),
    ):
        candidates = _in_force(rules, on)
        if candidates:
            return level, _one(candidates, level)
    return None


def _matter_context(matter: Matter, on: date) -> str:
    name = MATTER_TYPES.get(matter.matter_type, "")
    return (
        f"matter {matter.key} (事项编码 {matter.service_code}, 事项类型 {matter.matter_type} {name}, "
        f"实施机构 {matter.agency}, 办结 {on.isoformat()})"
    )


def _details(matter: Matter, on: date, table: RetentionTable) -> dict[str, Any]:
    return {
        "matter": matter.key,
        "service_code": matter.service_code,
        "matter_type": matter.matter_type,
        "agency": matter.agency,
        "date": on.isoformat(),
        "table_version": table.version,
    }


def disposition_date(year: int, period: Any) -> str | None:
    """到期鉴定 date: 31 December of the completion year plus the period; None for 永久."""
    years = getattr(period, "years", None)
    if years is None:
        return None
    return date(year + years, 12, 31).isoformat()


def appraise(table: RetentionTable, matter: Matter) -> Appraisal:
    """Decide whether and how long a matter is kept, by the rules in force on its completion date.

    Each document group the matter has is judged by its 事项编码+材料类别 rule if there is one, else
    by the matter-level rule. The package keeps the longest period among its archived groups; the
    rule that gave it is recorded (ties: the more specific, then the lower row). A matter without
    documents is judged by the matter-level rule alone (the packager reports the missing files).
    """
    on = matter.completed_at.date()
    idx = table.index
    code = fold_width(matter.service_code)
    mtype = matter.matter_type
    agency = fold_width(matter.agency)
    present = {doc.group for doc in matter.documents}
    base: tuple[int, Rule] | None = None
    base_done = False
    decided: list[tuple[DocumentGroup | None, Rule, int]] = []
    try:
        groups: list[DocumentGroup | None] = [g for g in _GROUP_ORDER if g in present] if present else [None]
        for group in groups:
            if group is not None:
                candidates = _in_force(idx.by_code_group.get((code, _SHORT[group])), on)
                if candidates:
                    decided.append((group, _one(candidates, LEVEL_CODE_GROUP), LEVEL_CODE_GROUP))
                    continue
            if not base_done:
                base = _matter_level(idx, code, mtype, agency, on)
                base_done = True
            if base is None:
                which = f" for its {group.value}" if group is not None else ""
                raise AppraisalError(
                    Finding(
                        "Q-RETENTION-NO-RULE",
                        matter.key,
                        f"{_matter_context(matter, on)}: no rule of retention table {table.version} "
                        f"applies{which} (no rule for the 事项编码, the 事项类型 and 实施机构, the 事项类型, "
                        "and no default rule in force on that date)",
                        details={**_details(matter, on, table), "group": group.value if group else None},
                    )
                )
            decided.append((group, base[1], base[0]))
    except _Ambiguous as amb:
        rows = ", ".join(str(r.row) for r in amb.rules)
        raise AppraisalError(
            Finding(
                "Q-RETENTION-AMBIGUOUS",
                matter.key,
                f"{_matter_context(matter, on)}: rows {rows} of retention table {table.version} are equally "
                f"specific ({LEVEL_NAMES[amb.level]}), all in force on {on.isoformat()}, and disagree",
                details={**_details(matter, on, table), "rows": [r.row for r in amb.rules]},
            )
        ) from None

    archived = [d for d in decided if d[1].archived]
    if archived:
        _, rule, _ = max(archived, key=lambda d: (PERIOD_RANK[d[1].period], d[2], -d[1].row))  # type: ignore[index]
        period = rule.period
    else:
        _, rule, _ = max(decided, key=lambda d: (d[2], -d[1].row))
        period = None
    year = matter.completed_at.year
    return Appraisal(
        in_scope=period is not None,
        retention_period=period,
        category_code=rule.category_code,
        org_code=rule.org_code,
        year=year,
        disposition_date=disposition_date(year, period) if period is not None else None,
        excluded_groups=[g for g, r, _ in decided if g is not None and not r.archived],
        table_version=table.version,
        rule_row=rule.row,
        rule_basis=rule.basis,
    )


def _rule_view(rule: Rule, level: int) -> dict[str, Any]:
    return {
        **rule.to_record(),
        "level": level,
        "level_name": LEVEL_NAMES[level],
        "level_name_en": LEVEL_NAMES_EN[level],
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
    on = as_date(on_date)
    idx = table.index
    code = fold_width(service_code) if service_code else None
    agency_n = fold_width(agency) if agency else None
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

    levels: list[tuple[int, list[Rule]]] = []
    if code and group_short:
        levels.append((LEVEL_CODE_GROUP, list(idx.by_code_group.get((code, group_short), ()))))
    if code:
        levels.append((LEVEL_CODE, list(idx.by_code.get(code, ()))))
    for level, pick in (
        (LEVEL_TYPE_AGENCY, lambda c: idx.by_type_agency.get((c, agency_n or ""), ()) if agency_n else ()),
        (LEVEL_TYPE, lambda c: idx.by_type.get(c, ())),
    ):
        seen: dict[int, Rule] = {}
        for c in codes:
            for r in pick(c):
                seen[r.row] = r
        levels.append((level, sorted(seen.values(), key=lambda r: r.row)))
    levels.append((LEVEL_DEFAULT, list(idx.default)))

    decision: dict[str, Any] | None = None
    winner: tuple[int, Rule] | None = None
    ambiguous: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    not_in_force: list[dict[str, Any]] = []
    for level, rules in levels:
        for r in rules:
            if not r.in_force(on):
                why = (
                    f"生效日期 {r.effective_date} is after {on}"
                    if r.effective_date and r.effective_date > on
                    else f"失效日期 {r.expiry_date} is on or before {on}"
                )
                not_in_force.append({**_rule_view(r, level), "why": f"not in force: {why}"})
        candidates = _in_force(rules, on)
        if not candidates:
            continue
        if winner is None and not ambiguous:
            try:
                rule = _one(candidates, level)
            except _Ambiguous as amb:
                ambiguous = [_rule_view(r, level) for r in amb.rules]
                continue
            winner = (level, rule)
            decision = _rule_view(rule, level)
            for r in candidates:
                if r is not rule:
                    lost.append(
                        {**_rule_view(r, level), "why": f"same level, same outcome; row {rule.row} comes first"}
                    )
            continue
        top = winner[0] if winner else max(a["level"] for a in ambiguous)
        for r in candidates:
            lost.append(
                {
                    **_rule_view(r, level),
                    "why": f"less specific: {LEVEL_NAMES[level]} is below {LEVEL_NAMES[top]}",
                }
            )

    group_rules: list[dict[str, Any]] = []
    if code and group_short is None:
        for r in _in_force(idx.any_by_code.get(code), on):
            if r.group:
                group_rules.append(_rule_view(r, LEVEL_CODE_GROUP))

    if winner is not None:
        status = "decided"
        rule = winner[1]
        outcome = rule.scope + (f" {rule.period.label} ({rule.period.value})" if rule.period else "")
        message = f"row {rule.row} decides ({LEVEL_NAMES[winner[0]]}): {outcome}"
    elif ambiguous:
        status = "ambiguous"
        message = f"rows {', '.join(str(a['row']) for a in ambiguous)} are equally specific and disagree"
    else:
        status = "no_rule"
        message = "no rule applies on this date"
    return {
        "query": {
            "service_code": code,
            "matter_type": ",".join(codes) or None,
            "agency": agency_n,
            "group": group_short,
            "date": on.isoformat(),
            "table_version": table.version,
        },
        "status": status,
        "decision": decision,
        "lost": lost,
        "ambiguous": ambiguous,
        "not_in_force": not_in_force,
        "group_rules": group_rules,
        "message": message,
    }
