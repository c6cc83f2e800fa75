"""What the ledger knows per 实施机构 (agency), for the bureau's rollout view (custody/rollout.py).

All of it is aggregated by the database (GROUP BY agency), so the view costs a handful of queries
whatever the number of matters; only open quarantine entries are read row by row, because a
refused record keeps its 实施机构 inside its JSON (they are few: the quarantine is worked down).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry, Run, RunStatus, WaitingMatter
from ledger.night_queries import agency_of_record


@dataclass
class AgencyFacts:
    """One 实施机构 as the ledger sees it."""

    archived: int = 0  # distinct matters verified, all nights
    bytes: int = 0
    waiting: int = 0  # open waiting rows (待启用)
    quarantined: int = 0  # open quarantine entries
    service_codes: set[tuple[str, str]] = field(default_factory=set)  # (事项编码, 事项类型) seen
    last_night: Counter[str] = field(default_factory=Counter)  # archived / quarantined / waiting by the last night


def last_night(session: Session) -> Run | None:
    """The newest finished night (completed or failed) that was not a dry run."""
    runs = session.scalars(
        select(Run).where(Run.status != RunStatus.RUNNING.value).order_by(Run.started_at.desc()).limit(20)
    ).all()
    return next((r for r in runs if not (r.parameters or {}).get("dry_run")), None)


def agency_facts(session: Session, last_run_id: str | None) -> dict[str, AgencyFacts]:
    facts: dict[str, AgencyFacts] = defaultdict(AgencyFacts)
    for agency, n, size in session.execute(
        select(MatterRecord.agency, func.count(func.distinct(MatterRecord.project_id)),
               func.coalesce(func.sum(MatterRecord.total_bytes), 0))
        .where(MatterRecord.state == MatterState.VERIFIED).group_by(MatterRecord.agency)
    ):
        facts[agency].archived += int(n)
        facts[agency].bytes += int(size)
    for agency, code, mtype in session.execute(
        select(MatterRecord.agency, MatterRecord.service_code, MatterRecord.matter_type).distinct()
    ):
        facts[agency].service_codes.add((code, mtype))
    for agency, code, mtype, n in session.execute(
        select(WaitingMatter.agency, WaitingMatter.service_code, WaitingMatter.matter_type, func.count())
        .where(WaitingMatter.resolved_at.is_(None))
        .group_by(WaitingMatter.agency, WaitingMatter.service_code, WaitingMatter.matter_type)
    ):
        facts[agency].waiting += int(n)
        facts[agency].service_codes.add((code, mtype))
    for entry in session.scalars(select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None))):
        agency = agency_of_record(entry.record)
        facts[agency].quarantined += 1
        matter = entry.record.get("matter") if isinstance(entry.record, dict) else None
        if isinstance(matter, dict) and matter.get("service_code") and matter.get("matter_type"):
            facts[agency].service_codes.add((str(matter["service_code"]), str(matter["matter_type"])))
    if last_run_id is not None:
        _last_night(session, last_run_id, facts)
    return dict(facts)


def _last_night(session: Session, run_id: str, facts: dict[str, AgencyFacts]) -> None:
    for agency, state, n in session.execute(
        select(MatterRecord.agency, MatterRecord.state, func.count())
        .where(MatterRecord.run_id == run_id).group_by(MatterRecord.agency, MatterRecord.state)
    ):
        key = "archived" if state == MatterState.VERIFIED else str(getattr(state, "value", state))
        facts[agency].last_night[key] += int(n)
    for agency, n in session.execute(
        select(WaitingMatter.agency, func.count()).where(WaitingMatter.run_id == run_id)
        .group_by(WaitingMatter.agency)
    ):
        facts[agency].last_night["waiting"] += int(n)
    for entry in session.scalars(select(QuarantineEntry).where(QuarantineEntry.run_id == run_id)):
        facts[agency_of_record(entry.record)].last_night["quarantined"] += 1


def run_brief(run: Run) -> dict[str, Any]:
    return {"run_id": run.id, "status": run.status, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None}
