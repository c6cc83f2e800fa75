"""The ledger's side of a reconciliation (对账, custody/reconcile.py): where each matter of a source ended.

A matter the source lists is looked up by 办件编号 wherever it may be: a matter row (archived, not in
scope, quarantined, or still in progress), an open waiting row (待启用), an open quarantine entry (a
record refused before it had a row). By 办件编号, not by completion time, because a refused record may
carry no readable 办结时间 and must still count as accounted for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry, WaitingMatter
from ledger.night_queries import agency_of_record

# a matter's outcome, most final first: the first that applies to any of its rows is its outcome
OUTCOMES = ("archived", "not_in_scope", "quarantined", "waiting", "pending")
_STATE_OUTCOME = {
    MatterState.VERIFIED: "archived",
    MatterState.NOT_IN_SCOPE: "not_in_scope",
    MatterState.QUARANTINED: "quarantined",
    MatterState.NUMBERED: "pending",
    MatterState.TRANSFERRED: "pending",
}
LOOKUP_CHUNK = 500


def outcomes(session: Session, source: str, project_ids: Sequence[str]) -> dict[str, str]:
    """办件编号 -> outcome for the ones the ledger knows; absent ids are unaccounted for."""
    found: dict[str, set[str]] = {}
    for start in range(0, len(project_ids), LOOKUP_CHUNK):
        part = list(project_ids[start : start + LOOKUP_CHUNK])
        for pid, state in session.execute(
            select(MatterRecord.project_id, MatterRecord.state)
            .where(MatterRecord.source == source, MatterRecord.project_id.in_(part))
        ):
            found.setdefault(pid, set()).add(_STATE_OUTCOME[MatterState(state)])
        for (pid,) in session.execute(
            select(WaitingMatter.project_id).where(WaitingMatter.source == source,
                                                   WaitingMatter.project_id.in_(part),
                                                   WaitingMatter.resolved_at.is_(None))
        ):
            found.setdefault(pid, set()).add("waiting")
        for (pid,) in session.execute(
            select(QuarantineEntry.project_id).where(QuarantineEntry.source == source,
                                                     QuarantineEntry.project_id.in_(part),
                                                     QuarantineEntry.resolved_at.is_(None))
        ):
            found.setdefault(pid, set()).add("quarantined")
    return {pid: next(o for o in OUTCOMES if o in kinds) for pid, kinds in found.items()}


def completed_in_window(session: Session, source: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every matter of `source` the ledger holds as completed in [start, end), one per 办件编号, with its
    outcome: what reconciliation counts when the source cannot list its matters, and where it looks
    for matters the ledger has but the source no longer counts."""
    best: dict[str, dict[str, Any]] = {}

    def keep(pid: str, agency: str, mtype: str, outcome: str) -> None:
        held = best.get(pid)
        if held is None or OUTCOMES.index(outcome) < OUTCOMES.index(held["outcome"]):
            best[pid] = {"project_id": pid, "agency": agency, "matter_type": mtype, "outcome": outcome}

    for pid, agency, mtype, state in session.execute(
        select(MatterRecord.project_id, MatterRecord.agency, MatterRecord.matter_type, MatterRecord.state)
        .where(MatterRecord.source == source, MatterRecord.completed_at >= start, MatterRecord.completed_at < end)
    ):
        keep(pid, agency, mtype, _STATE_OUTCOME[MatterState(state)])
    for pid, agency, mtype in session.execute(
        select(WaitingMatter.project_id, WaitingMatter.agency, WaitingMatter.matter_type)
        .where(WaitingMatter.source == source, WaitingMatter.resolved_at.is_(None),
               WaitingMatter.completed_at >= start, WaitingMatter.completed_at < end)
    ):
        keep(pid, agency, mtype, "waiting")
    for entry in _open_quarantine(session, source):
        matter = entry.record.get("matter") if isinstance(entry.record, dict) else None
        if not isinstance(matter, dict) or entry.project_id in best:
            continue
        at = _aware(matter.get("completed_at"))
        if at is not None and start <= at < end:
            keep(entry.project_id, agency_of_record(entry.record), str(matter.get("matter_type", "")), "quarantined")
    return list(best.values())


def _open_quarantine(session: Session, source: str) -> Iterable[QuarantineEntry]:
    return session.scalars(
        select(QuarantineEntry).where(QuarantineEntry.source == source, QuarantineEntry.resolved_at.is_(None))
    )


def _aware(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else None
