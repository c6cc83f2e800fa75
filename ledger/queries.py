"""The questions the flows and the commands ask the ledger, each written once.

Functions take a session and return rows or plain values; the caller owns the session and the
transaction (STYLE habit 8). Nothing in `flows/` writes a `select()` of its own: when a stage or a
command needs to know something new, the query goes here, beside the others, so the next engineer
finds every read of the ledger in one place. (Writes that change state live in `ledger/store.py`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry
from schemas.model import RetentionPeriod

# ---------------------------------------------------------------- the nightly run (flows/)


# ---------------------------------------------------------------- the commands (flows/cli/)


def archived_matter(session: Session, archival_code: str) -> MatterRecord | None:
    """The ledger row that holds a 档号 (`guidang check`, `guidang export eep` name a matter by it)."""
    return session.scalars(select(MatterRecord).where(MatterRecord.archival_code == archival_code)).first()


def due_for_appraisal(session: Session, before: date) -> Sequence[MatterRecord]:
    """到期鉴定清单: archived (verified) matters whose disposition date is before `before`, soonest
    first. 永久 never falls due, whatever date a row might carry."""
    return session.scalars(
        select(MatterRecord)
        .where(
            MatterRecord.state == MatterState.VERIFIED,
            MatterRecord.disposition_date.is_not(None),
            MatterRecord.disposition_date < before.isoformat(),
            or_(MatterRecord.retention_period.is_(None), MatterRecord.retention_period != RetentionPeriod.PERMANENT),
        )
        .order_by(MatterRecord.disposition_date, MatterRecord.archival_code)
    ).all()


def quarantine_entries(
    session: Session, *, resolved_too: bool = False, source: str | None = None
) -> Sequence[QuarantineEntry]:
    """The quarantine (隔离区), oldest first: the open entries, or every entry with `resolved_too`."""
    q = select(QuarantineEntry).order_by(QuarantineEntry.id)
    if not resolved_too:
        q = q.where(QuarantineEntry.resolved_at.is_(None))
    if source:
        q = q.where(QuarantineEntry.source == source)
    return session.scalars(q).all()


def quarantine_entry(session: Session, entry_id: int) -> QuarantineEntry | None:
    """One quarantine entry by its id (as `guidang quarantine list` shows it), open or resolved."""
    return session.get(QuarantineEntry, entry_id)
