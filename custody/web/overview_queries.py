"""The 概览 page's question: what did each night do, per 实施机构, over all the runs of that night.

A night (夜) is the day of a run's 归档时间 in the configured zone, as `audit register --night`
counts it; a night may have several runs (the scheduled one, a rerun after a failure, a quarantine
retry), shown together under the night with each run's status. Counts are made by the database,
grouped by (run, 实施机构), and folded into nights here: 已归档, 隔离, 不归档 and 待启用, so that every
matter a night saw is somewhere on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from custody.web.page_queries import QUARANTINE_AGENCY_PATHS, UNKNOWN_UNIT, night_of
from ledger.models import MatterRecord, MatterState, QuarantineEntry, Run, WaitingMatter

RUN_KINDS = {"retry": "隔离重试", "backfill": "补采"}  # parameters key -> what the page calls the run


@dataclass
class UnitCounts:
    agency: str  # 实施机构
    archived: int = 0  # 已归档
    quarantined: int = 0  # 隔离
    not_in_scope: int = 0  # 不归档
    waiting: int = 0  # 待启用
    bytes: int = 0


@dataclass
class RunLine:
    run_id: str
    kind: str  # 夜间归档, 隔离重试, 补采
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None  # raw: the page masks it
    failed_sources: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Night:
    night: date
    runs: list[RunLine] = field(default_factory=list)
    units: list[UnitCounts] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(u, name) for u in self.units)

    @property
    def status(self) -> str:
        """The night's outcome: failed when its last run failed, running while one runs."""
        if any(r.status == "running" for r in self.runs):
            return "running"
        return self.runs[-1].status if self.runs else "completed"


def _kind(parameters: dict[str, Any] | None) -> str:
    for key, label in RUN_KINDS.items():
        if (parameters or {}).get(key):
            return label
    return "夜间归档"


def _failed_sources(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    sources = (summary or {}).get("sources") or {}
    return [(name, str(s.get("error"))) for name, s in sources.items() if isinstance(s, dict) and s.get("error")]


def overview(session: Session, zone: ZoneInfo, *, page: int, per_page: int,
             agency_columns: tuple[str, ...] = ()) -> tuple[int, list[Night]]:
    """(how many nights, one page of them newest first, each with its runs and per-unit counts).
    `agency_columns`: the sources' own 实施机构 columns, where a refused row may keep it."""
    brief = session.execute(select(Run.id, Run.started_at, Run.parameters)).all()
    by_night: dict[date, list[str]] = {}
    for r in brief:
        by_night.setdefault(night_of(r, zone), []).append(r.id)  # type: ignore[arg-type]
    days = sorted(by_night, reverse=True)
    chosen = days[page * per_page:(page + 1) * per_page]
    run_ids = [rid for d in chosen for rid in by_night[d]]
    if not run_ids:
        return len(days), []
    nights = {d: Night(d) for d in chosen}
    night_of_run: dict[str, date] = {rid: d for d in chosen for rid in by_night[d]}
    for r in session.execute(
        select(Run.id, Run.started_at, Run.finished_at, Run.status, Run.parameters, Run.summary, Run.error)
        .where(Run.id.in_(run_ids)).order_by(Run.started_at, Run.id)
    ):
        nights[night_of_run[r.id]].runs.append(RunLine(r.id, _kind(r.parameters), r.started_at, r.finished_at,
                                                       r.status, r.error, _failed_sources(r.summary)))
    units: dict[tuple[date, str], UnitCounts] = {}

    def unit(run_id: str, agency: str | None) -> UnitCounts:
        key = (night_of_run[run_id], agency or UNKNOWN_UNIT)
        if key not in units:
            units[key] = UnitCounts(key[1])
        return units[key]

    size_sum = func.coalesce(func.sum(MatterRecord.total_bytes), 0)
    for run_id, state, agency, n, size in session.execute(
        select(MatterRecord.run_id, MatterRecord.state, MatterRecord.agency, func.count(), size_sum)
        .where(MatterRecord.run_id.in_(run_ids),
               MatterRecord.state.in_([MatterState.VERIFIED, MatterState.NOT_IN_SCOPE]))
        .group_by(MatterRecord.run_id, MatterRecord.state, MatterRecord.agency)
    ):
        u = unit(run_id, agency)
        if state == MatterState.VERIFIED:
            u.archived += int(n)
            u.bytes += int(size)
        else:
            u.not_in_scope += int(n)
    # grouped by the label, not the expression again: PostgreSQL would see two different bound keys
    paths = QUARANTINE_AGENCY_PATHS + [("invalid", "raw", c) for c in agency_columns]
    agency_json = func.coalesce(*(QuarantineEntry.record[path].as_string() for path in paths)).label("agency")
    for run_id, agency, n in session.execute(
        select(QuarantineEntry.run_id, agency_json, func.count())
        .where(QuarantineEntry.run_id.in_(run_ids)).group_by(QuarantineEntry.run_id, agency_json)
    ):
        unit(run_id, agency).quarantined += int(n)
    for run_id, agency, n in session.execute(
        select(WaitingMatter.run_id, WaitingMatter.agency, func.count())
        .where(WaitingMatter.run_id.in_(run_ids)).group_by(WaitingMatter.run_id, WaitingMatter.agency)
    ):
        unit(run_id, agency).waiting += int(n)
    for (day, _), u in sorted(units.items(), key=lambda kv: kv[0][1]):
        nights[day].units.append(u)
    return len(days), [nights[d] for d in chosen]
