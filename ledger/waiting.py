"""Matters waiting for enablement (待启用): recorded, counted, and closed once archived.

A matter of a unit or 事项类型 the bureau has not enabled yet moves the watermark like any other
(the night is finished with it), so it must be somewhere the bureau can count it: here, one row per
(source, 办件编号), with an event in the chain for each time it starts waiting. When its unit is
enabled the night collects the waiting window again (night/enablement.py); the row is closed by the
end state the matter then reaches, never before, so a matter that fails on the way stays waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.chain import append_event, utcnow
from ledger.models import MatterState, WaitingMatter
from ledger.reconcile_queries import outcomes
from schemas.model import Matter


def record_waiting(session: Session, m: Matter, reason: str, *, run_id: str | None) -> bool:
    """Record (or refresh) one waiting matter; True when something changed (and an event was written).

    The same matter seen again the next night, unchanged and for the same reason, writes nothing,
    so nights over a disabled unit do not fill the chain with repeats."""
    content_hash = m.content_hash()
    row = session.scalars(
        select(WaitingMatter).where(WaitingMatter.source == m.source, WaitingMatter.project_id == m.project_id)
        .with_for_update()
    ).first()
    if row is not None and row.resolved_at is None and row.content_hash == content_hash and row.reason == reason:
        return False
    facts = {
        "agency": m.agency, "agency_code": m.agency_code, "matter_type": m.matter_type,
        "service_code": m.service_code, "completed_at": m.completed_at, "source_updated_at": m.updated_at,
        "content_hash": content_hash, "reason": reason, "run_id": run_id, "resolved_at": None, "resolution": None,
    }
    if row is None:
        session.add(WaitingMatter(source=m.source, project_id=m.project_id, first_seen_at=utcnow(), **facts))
    else:
        for name, value in facts.items():
            setattr(row, name, value)
    session.flush()
    append_event(session, "waiting", run_id=run_id, source=m.source, project_id=m.project_id,
                 payload={"reason": reason, "agency": m.agency, "matter_type": m.matter_type,
                          "content_hash": content_hash})
    return True


def open_waiting(session: Session, source: str | None = None) -> Sequence[WaitingMatter]:
    q = select(WaitingMatter).where(WaitingMatter.resolved_at.is_(None))
    if source is not None:
        q = q.where(WaitingMatter.source == source)
    return session.scalars(q.order_by(WaitingMatter.source_updated_at, WaitingMatter.project_id)).all()


def resolve_reached(session: Session, source: str, *, run_id: str | None) -> int:
    """Close the open waiting rows of `source` whose matter has reached an end state (archived,
    not in scope, quarantined); returns how many were closed. Looked up in bulk, as reconciliation
    does (`reconcile_queries.outcomes`), so a unit with thousands of waiting matters costs a few
    queries a night, not two per matter."""
    rows = open_waiting(session, source)
    found = outcomes(session, source, [r.project_id for r in rows])
    closed = 0
    for row in rows:
        state = _RESOLUTION.get(found.get(row.project_id, ""))
        if state is None:
            continue
        row.resolved_at, row.resolution = utcnow(), state
        append_event(session, "waiting-resolved", run_id=run_id, source=row.source, project_id=row.project_id,
                     payload={"resolution": state, "waited_since": row.first_seen_at.isoformat()})
        closed += 1
    return closed


# an outcome that ends waiting -> the resolution written (the matter state's own name)
_RESOLUTION = {"archived": MatterState.VERIFIED.value, "not_in_scope": MatterState.NOT_IN_SCOPE.value,
               "quarantined": MatterState.QUARANTINED.value}


def waiting_window(rows: Sequence[WaitingMatter]) -> tuple[datetime, datetime] | None:
    """The (since, until] window of source update times that holds every row, for collecting them again."""
    if not rows:
        return None
    times = [r.source_updated_at for r in rows]
    return min(times) - timedelta(microseconds=1), max(times)
