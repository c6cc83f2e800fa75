"""Deciding a matter's retention (鉴定) from the table: `appraise`, on the hot path of every night.

Which rule decides each document group, and how the groups make the package's decision, is
`retention.decision`; this module turns that into the `Appraisal` a package records, or into the
`AppraisalError` a quarantined matter carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

from retention.decision import Decision, RuleKey, combine, decide
from retention.table import LEVEL_NAMES, RetentionTable, fold_width
from schemas.errors import InvariantBroken
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


def _undecided(table: RetentionTable, matter: Matter, group: DocumentGroup | None, d: Decision) -> AppraisalError:
    on = d.key.on
    if d.ambiguous:
        rows = ", ".join(str(r.row) for r in d.ambiguous)
        return AppraisalError(
            Finding(
                "Q-RETENTION-AMBIGUOUS",
                matter.key,
                f"{_matter_context(matter, on)}: rows {rows} of retention table {table.version} are equally "
                f"specific ({LEVEL_NAMES[d.level or 0]}), all in force on {on.isoformat()}, and disagree",
                details={**_details(matter, on, table), "rows": [r.row for r in d.ambiguous]},
            )
        )
    which = f" for its {group.value}" if group is not None else ""
    return AppraisalError(
        Finding(
            "Q-RETENTION-NO-RULE",
            matter.key,
            f"{_matter_context(matter, on)}: no rule of retention table {table.version} "
            f"applies{which} (no rule for the 事项编码, the 事项类型 and 实施机构, the 事项类型, "
            "and no default rule in force on that date)",
            details={**_details(matter, on, table), "group": group.value if group else None},
        )
    )


def disposition_date(year: int, period: Any) -> str | None:
    """到期鉴定 date: 31 December of the completion year plus the period; None for 永久."""
    years = getattr(period, "years", None)
    if years is None:
        return None
    return date(year + years, 12, 31).isoformat()


def appraise(table: RetentionTable, matter: Matter) -> Appraisal:
    """Decide whether and how long a matter is kept, by the rules in force on its completion date.

    Each document group the matter has is decided on its own (`retention.decision.decide`); the
    package's decision combines them (`combine`: the longest period among archived groups). A
    matter without documents is judged by the matter-level rule alone (the packager reports the
    missing files). The 事项类型 looked up is exactly the matter's code. The first group, in group
    order, that no rule decides is what the `AppraisalError` names.
    """
    idx = table.index
    key = RuleKey(
        fold_width(matter.service_code), (matter.matter_type,), fold_width(matter.agency), None,
        matter.completed_at.date(),
    )
    present = {doc.group for doc in matter.documents}
    if present:
        groups = [(g, decide(idx, key._replace(group=_SHORT[g]))) for g in _GROUP_ORDER if g in present]
    else:
        groups = [(None, decide(idx, key))]
    package = combine(groups)
    if package.failed:
        raise _undecided(table, matter, *package.failed[0])
    rule = package.rule
    if rule is None:
        raise InvariantBroken(f"{matter.source}/{matter.project_id}: appraisal decided without a rule")
    period = package.period
    year = matter.completed_at.year
    return Appraisal(
        in_scope=period is not None,
        retention_period=period,
        category_code=rule.category_code,
        org_code=rule.org_code,
        year=year,
        disposition_date=disposition_date(year, period) if period is not None else None,
        excluded_groups=list(package.excluded_groups),
        table_version=table.version,
        rule_row=rule.row,
        rule_basis=rule.basis,
    )
