"""Where each unit stands in the rollout (推进情况): what `guidang audit rollout` and the console show.

The bureau enables units one by one against target dates it sets (schemas/units.py). Per unit it
asks: is it enabled, since when, for which 事项类型; how many of its 事项 have a retention rule (a
事项 without one is quarantined, so a unit cannot be called ready before they all do); how much it
has archived; what last night did for it; and whether its target is met, on track or at risk.
Agencies the ledger has seen that no unit names are listed too (unregistered), because their
matters wait for a registration nobody may have asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from ledger import rollout_queries
from ledger.night_queries import UNKNOWN_AGENCY
from ledger.store import Ledger
from retention import RetentionTable, is_covered
from schemas.config import Settings
from schemas.model import MATTER_TYPES
from schemas.units import Unit

AT_RISK_DAYS = 30  # a target this close with the unit not yet enabled for it is at risk

# status -> how the console and the table say it
STATUS_TEXT = {"met": "已达成", "on_track": "按计划", "at_risk": "有风险", "missed": "已逾期", "no_target": "未设目标"}


@dataclass
class UnitRollout:
    unit: str  # 实施机构
    registered: bool  # False: seen in the ledger, named by no unit in guidang.yaml
    code: str | None = None
    fonds: str | None = None
    org_code: str | None = None
    enabled: bool = False
    enabled_from: str | None = None
    enabled_now: bool = False
    matter_types: list[str] = field(default_factory=list)  # enabled 事项类型; empty = all
    service_codes: int = 0  # 事项 of the unit seen (and in the catalogue, when given)
    with_rule: int = 0  # of which a retention rule applies to
    rule_share: float | None = None
    archived: int = 0
    bytes: int = 0
    waiting: int = 0
    quarantined: int = 0
    last_night: dict[str, int] = field(default_factory=dict)
    target_date: str | None = None
    target_matter_types: list[str] = field(default_factory=list)
    status: str = "no_target"
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status_text": STATUS_TEXT[self.status]}


@dataclass
class RolloutReport:
    as_of: str
    last_night: dict[str, Any] | None
    units: list[UnitRollout]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for u in self.units:
            counts[u.status] = counts.get(u.status, 0) + 1
        return {"as_of": self.as_of, "last_night": self.last_night, "statuses": counts,
                "units": [u.to_dict() for u in self.units]}


def table_in_force(settings: Settings, ledger: Ledger, on: date) -> RetentionTable | None:
    """The retention table in force on `on`, read only (nothing is imported, as a first night
    would); None when there is none yet, and then no 事项 counts as having a rule."""
    from night.retention_book import load_book
    from schemas.findings import GuidangError

    try:
        return load_book(ledger, settings, dry_run=True).table_for(on)
    except GuidangError:
        return None


def rollout_report(
    settings: Settings, ledger: Ledger, table: RetentionTable | None, *, today: date,
    catalogue: Sequence[tuple[str, str, str]] = (),
) -> RolloutReport:
    """The rollout as of `today`; `catalogue` adds (实施机构, 事项编码, 事项类型) the ledger may not
    have seen yet (a unit's 事项 with no matter so far still need a rule)."""
    with ledger.read() as s:
        night = rollout_queries.last_night(s)
        facts = rollout_queries.agency_facts(s, night.id if night else None)
    index = settings.unit_index
    by_unit: dict[str, rollout_queries.AgencyFacts] = {}
    unregistered: dict[str, rollout_queries.AgencyFacts] = {}
    for agency, f in facts.items():
        unit = index.find(agency)
        target = by_unit if unit else unregistered
        merged = target.setdefault(unit.name if unit else agency, rollout_queries.AgencyFacts())
        _merge(merged, f)
    for agency, code, mtype in catalogue:
        unit = index.find(agency)
        (by_unit if unit else unregistered).setdefault(unit.name if unit else agency,
                                                       rollout_queries.AgencyFacts()).service_codes.add((code, mtype))
    units = [_unit_row(u, by_unit.get(u.name, rollout_queries.AgencyFacts()), table, today) for u in settings.units]
    if settings.units:  # without units every agency is enabled: nothing is unregistered
        for name, f in sorted(unregistered.items()):
            row = _unit_row(None, f, table, today, name=name)
            units.append(row)
    else:
        units += [_unit_row(None, f, table, today, name=name, enabled=True) for name, f in sorted(unregistered.items())]
    return RolloutReport(today.isoformat(), rollout_queries.run_brief(night) if night else None, units)


def _merge(into: rollout_queries.AgencyFacts, f: rollout_queries.AgencyFacts) -> None:
    into.archived += f.archived
    into.bytes += f.bytes
    into.waiting += f.waiting
    into.quarantined += f.quarantined
    into.service_codes |= f.service_codes
    into.last_night.update(f.last_night)


def _unit_row(
    unit: Unit | None, f: rollout_queries.AgencyFacts, table: RetentionTable | None, today: date, *,
    name: str = "", enabled: bool = False,
) -> UnitRollout:
    agency = unit.name if unit else name
    covered = sum(1 for code, mtype in f.service_codes
                  if table is not None and is_covered(table, code, mtype, agency, today))
    row = UnitRollout(
        unit=agency, registered=unit is not None or enabled,
        service_codes=len(f.service_codes), with_rule=covered,
        rule_share=round(covered / len(f.service_codes), 4) if f.service_codes and table is not None else None,
        archived=f.archived, bytes=f.bytes, waiting=f.waiting, quarantined=f.quarantined,
        last_night=dict(f.last_night), enabled=enabled, enabled_now=enabled,
    )
    if unit is not None:
        row.code, row.fonds, row.org_code = unit.code, unit.fonds, unit.org_code
        row.enabled, row.enabled_now = unit.enabled, unit.enabled_on(today)
        row.enabled_from = unit.enabled_from.isoformat() if unit.enabled_from else None
        row.matter_types = list(unit.matter_types)
        row.target_date = unit.target_date.isoformat() if unit.target_date else None
        row.target_matter_types = list(unit.target_matter_types)
    row.status, row.reason = _status(unit, row, today) if unit is not None else _unregistered(row, enabled)
    return row


def _unregistered(row: UnitRollout, enabled: bool) -> tuple[str, str]:
    if row.unit == UNKNOWN_AGENCY:
        return "no_target", "来源系统送来的记录中没有可识别的实施机构（见隔离区）"
    if enabled:
        return "no_target", "未配置实施机构名单：所有机构的办件均归档"
    return "at_risk", f"实施机构未登记（units 中没有）：{row.waiting} 件办件待启用"


def _status(unit: Unit, row: UnitRollout, today: date) -> tuple[str, str]:
    """met / on_track / at_risk / missed against the unit's target date, with the reason in words."""
    if unit.target_date is None:
        return "no_target", "未设目标日期"
    target = unit.target_date
    wanted = unit.target_matter_types or sorted(MATTER_TYPES)
    types_ok = not unit.matter_types or set(wanted) <= set(unit.matter_types)
    enabled_in_time = unit.enabled and types_ok and (unit.enabled_from is None or unit.enabled_from <= target)
    missing_rules = row.service_codes - row.with_rule
    if enabled_in_time and unit.enabled_on(today) and row.waiting == 0:
        if missing_rules:
            return "at_risk", f"已启用，但 {row.service_codes} 个事项中有 {missing_rules} 个没有保管期限规则"
        return "met", f"自 {unit.enabled_from or '开始'} 起已对目标事项类型启用，没有待启用的办件"
    days = (target - today).days
    if days < 0:
        return "missed", f"目标日期 {target} 已过去 {-days} 天：" + _gap(unit, types_ok, row)
    if enabled_in_time:
        return "on_track", f"自 {unit.enabled_from} 起启用，早于目标日期 {target}"
    if days <= AT_RISK_DAYS:
        return "at_risk", f"距目标日期 {target} 还有 {days} 天：" + _gap(unit, types_ok, row)
    return "on_track", f"距目标日期 {target} 还有 {days} 天"


def _gap(unit: Unit, types_ok: bool, row: UnitRollout) -> str:
    if not unit.enabled:
        return "尚未启用"
    if not types_ok:
        return f"只对事项类型 {'、'.join(unit.matter_types)} 启用"
    if unit.enabled_from and unit.target_date and unit.enabled_from > unit.target_date:
        return f"要到 {unit.enabled_from} 才启用"
    return f"仍有 {row.waiting} 件办件待启用"
