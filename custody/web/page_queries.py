"""The ledger questions the console's pages ask, as plain rows for the templates.

Every count and sum is made by the database (GROUP BY over a page of runs, served by the covering
index `ix_matters_run_overview`), never by loading matters into Python: the overview of a ledger of
tens of thousands of matters stays one indexed query per table. Functions take a session and only
read (the console writes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
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


def night_of(run: Run, zone: ZoneInfo) -> date:
    as_of = (run.parameters or {}).get("as_of")
    moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) else run.started_at
    return moment.astimezone(zone).date()


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
