"""The ledger questions the console's pages ask, as plain rows for the templates.

Every count and sum is made by the database (GROUP BY over a page of runs, served by the covering
index `ix_matters_run_overview`), never by loading matters into Python: the overview of a ledger of
tens of thousands of matters stays one indexed query per table. Functions take a session and only
read (the console writes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ledger.audit_queries import normalise_code
from ledger.models import Event, MatterRecord, MatterState, QuarantineEntry, Run
from ledger.night_queries import UNKNOWN_AGENCY
from schemas.personal import RAW_AGENCY_KEYS

UNKNOWN_UNIT = UNKNOWN_AGENCY
# where a quarantine row keeps its 实施机构, in the shapes schemas/personal.py knows, for SQL to group by
QUARANTINE_AGENCY_PATHS = [("matter", "agency")] + [("invalid", "raw", k) for k in RAW_AGENCY_KEYS]


@dataclass
class UnitNight:
    agency: str  # 实施机构
    archived: int = 0
    quarantined: int = 0
    bytes: int = 0


@dataclass
class NightRow:
    run_id: str
    night: date  # the day of the run's 归档时间 (as_of), as `audit register --night` counts it
    started_at: datetime
    status: str
    error: str | None  # raw: the page masks it
    failed_sources: list[tuple[str, str]] = field(default_factory=list)
    units: list[UnitNight] = field(default_factory=list)

    @property
    def archived(self) -> int:
        return sum(u.archived for u in self.units)

    @property
    def quarantined(self) -> int:
        return sum(u.quarantined for u in self.units)

    @property
    def bytes(self) -> int:
        return sum(u.bytes for u in self.units)


def night_of(run: Run, zone: ZoneInfo) -> date:
    as_of = (run.parameters or {}).get("as_of")
    moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) else run.started_at
    return moment.astimezone(zone).date()


def _failed_sources(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    sources = (summary or {}).get("sources") or {}
    return [(name, str(s.get("error"))) for name, s in sources.items() if isinstance(s, dict) and s.get("error")]


def overview(session: Session, zone: ZoneInfo, *, page: int, per_page: int) -> tuple[int, list[NightRow]]:
    """(how many runs, one page of them newest first, each with its per-unit counts)."""
    total = session.scalar(select(func.count()).select_from(Run)) or 0
    runs = session.execute(
        select(Run.id, Run.started_at, Run.status, Run.parameters, Run.summary, Run.error)
        .order_by(Run.started_at.desc(), Run.id.desc()).offset(page * per_page).limit(per_page)
    ).all()
    rows: dict[str, NightRow] = {}
    for r in runs:
        rows[r.id] = NightRow(r.id, night_of(r, zone), r.started_at, r.status, r.error, _failed_sources(r.summary))
    if not rows:
        return int(total), []
    units: dict[tuple[str, str], UnitNight] = {}

    def unit(run_id: str, agency: str | None) -> UnitNight:
        key = (run_id, agency or UNKNOWN_UNIT)
        if key not in units:
            units[key] = UnitNight(key[1])
        return units[key]

    size_sum = func.coalesce(func.sum(MatterRecord.total_bytes), 0)
    for run_id, agency, n, size in session.execute(
        select(MatterRecord.run_id, MatterRecord.agency, func.count(), size_sum)
        .where(MatterRecord.run_id.in_(list(rows)), MatterRecord.state == MatterState.VERIFIED)
        .group_by(MatterRecord.run_id, MatterRecord.agency)
    ):
        u = unit(run_id, agency)
        u.archived, u.bytes = int(n), int(size)
    # grouped by the label, not the expression again: PostgreSQL would see two different bound keys
    agency_json = func.coalesce(*(QuarantineEntry.record[path].as_string() for path in QUARANTINE_AGENCY_PATHS)
                                ).label("agency")
    for run_id, agency, n in session.execute(
        select(QuarantineEntry.run_id, agency_json, func.count())
        .where(QuarantineEntry.run_id.in_(list(rows)))
        .group_by(QuarantineEntry.run_id, agency_json)
    ):
        unit(run_id, agency).quarantined = int(n)
    for (run_id, _), u in sorted(units.items(), key=lambda kv: kv[0][1]):
        rows[run_id].units.append(u)
    return int(total), list(rows.values())


# ---------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchQuery:
    archival_code: str = ""  # 档号
    project_id: str = ""  # 办件编号
    title: str = ""  # 题名
    applicant: str = ""  # 申请人 (name)
    service: str = ""  # 事项: 事项编码 or 事项名称
    agency: str = ""  # 实施机构
    date_from: date | None = None  # 办结 from (inclusive)
    date_to: date | None = None  # 办结 to (inclusive)

    @property
    def empty(self) -> bool:
        return not (self.archival_code or self.project_id or self.title or self.applicant or self.service
                    or self.agency or self.date_from or self.date_to)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, q: SearchQuery, zone: ZoneInfo, *, offset: int = 0,
           limit: int = 100) -> tuple[int, Sequence[MatterRecord]]:
    """(how many matters match, `limit` of them from `offset` by 办结时间, newest first)."""
    stmt = select(MatterRecord)
    if q.archival_code:
        column = MatterRecord.archival_code
        for sep in ("·", "－", "—", "–", "‧", "・", "."):
            column = func.replace(column, sep, "-")
        stmt = stmt.where(column.like(_like(normalise_code(q.archival_code)), escape="\\"))
    if q.project_id:
        stmt = stmt.where(MatterRecord.project_id.like(_like(q.project_id.strip()), escape="\\"))
    if q.title:
        stmt = stmt.where(MatterRecord.title.like(_like(q.title), escape="\\"))
    if q.applicant:
        name = MatterRecord.record[("applicant", "name")].as_string()
        stmt = stmt.where(name.like(_like(q.applicant), escape="\\"))
    if q.service:
        pattern = _like(q.service.strip())
        stmt = stmt.where(or_(MatterRecord.service_code.like(pattern, escape="\\"),
                              MatterRecord.service_name.like(pattern, escape="\\")))
    if q.agency:
        stmt = stmt.where(MatterRecord.agency.like(_like(q.agency.strip()), escape="\\"))
    if q.date_from:
        stmt = stmt.where(MatterRecord.completed_at >= datetime.combine(q.date_from, time.min, zone))
    if q.date_to:
        stmt = stmt.where(MatterRecord.completed_at < datetime.combine(q.date_to + timedelta(days=1), time.min, zone))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    found = session.scalars(stmt.order_by(MatterRecord.completed_at.desc(), MatterRecord.id.desc())
                             .offset(offset).limit(limit)).all()
    return int(total), found


def matter_events(session: Session, record: MatterRecord) -> Sequence[Event]:
    return session.scalars(
        select(Event).where(Event.source == record.source, Event.project_id == record.project_id).order_by(Event.seq)
    ).all()


# ---------------------------------------------------------------- quarantine, audit, downloads


def open_quarantine(session: Session, *, limit: int = 500) -> tuple[int, Sequence[QuarantineEntry]]:
    stmt = select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return int(total), session.scalars(stmt.order_by(QuarantineEntry.created_at, QuarantineEntry.id).limit(limit)).all()


def last_event(session: Session, kind: str) -> Event | None:
    return session.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq.desc()).limit(1)).first()


def recent_events(session: Session, kinds: list[str], *, limit: int = 100) -> Sequence[Event]:
    """The newest events of `kinds`, newest first."""
    return session.scalars(select(Event).where(Event.kind.in_(kinds)).order_by(Event.seq.desc()).limit(limit)).all()


def event_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def nights_with_packages(session: Session, zone: ZoneInfo) -> list[tuple[date, int]]:
    """Each night that verified packages, newest first, with how many (what its register lists)."""
    per_run = dict(session.execute(
        select(MatterRecord.run_id, func.count()).where(MatterRecord.state == MatterState.VERIFIED)
        .group_by(MatterRecord.run_id)
    ).all())
    nights: dict[date, int] = {}
    for run in session.scalars(select(Run).order_by(Run.started_at)):
        if per_run.get(run.id):
            day = night_of(run, zone)
            nights[day] = nights.get(day, 0) + int(per_run[run.id])
    return sorted(nights.items(), reverse=True)


def batches(session: Session) -> list[tuple[str, int]]:
    """Every DA/T 93 batch with its member count, newest first."""
    return [(b, int(n)) for b, n in session.execute(
        select(MatterRecord.batch_id, func.count()).where(MatterRecord.batch_id.is_not(None))
        .group_by(MatterRecord.batch_id).order_by(MatterRecord.batch_id.desc())
    ).all()]


def batch_names(session: Session, batch_id: str) -> list[str]:
    """The persons' names of a batch's members (schemas/personal.py), to mask in its catalogue."""
    from schemas.personal import personal_names

    names: list[str] = []
    for record in session.scalars(select(MatterRecord.record).where(MatterRecord.batch_id == batch_id)):
        names += personal_names(record)
    return names
