"""The questions the night, the bureau's side and the commands ask the ledger, each written once.

Functions take a session and return rows or plain values; the caller owns the session and the
transaction (one unit of work per caller, see docs/architecture.md).
Nothing in `night/`, `custody/` or `flows/` writes a `select()` of its
own: when a stage or a command needs to know something new, the query goes here, beside the others, so the next engineer
finds every read of the ledger in one place. (Writes that change state live in `ledger/store.py`.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState, QuarantineEntry, RetentionVersion, Watermark
from schemas.model import RetentionPeriod

# ---------------------------------------------------------------- the nightly run (night/)


def get_watermark(session: Session, source: str) -> datetime | None:
    """Every matter of `source` updated at or before this has reached an end state (None: never run)."""
    wm = session.get(Watermark, source)
    return wm.value if wm else None


def matter(session: Session, matter_id: int) -> MatterRecord | None:
    return session.get(MatterRecord, matter_id)


def matters(session: Session, matter_ids: Sequence[int], *, for_update: bool = False) -> dict[int, MatterRecord]:
    """Rows by id in one query (a chunk's), loaded into the session: a later `session.get` of one
    of them issues no SQL. `for_update` locks them as `session.get(..., with_for_update=True)` would."""
    found: dict[int, MatterRecord] = {}
    ids = list(dict.fromkeys(matter_ids))
    for start in range(0, len(ids), 500):  # bound the IN list
        query = select(MatterRecord).where(MatterRecord.id.in_(ids[start:start + 500]))
        if for_update:
            query = query.with_for_update()
        found.update((r.id, r) for r in session.scalars(query))
    return found


def latest_version(session: Session, source: str, project_id: str) -> MatterRecord | None:
    """The newest row of a matter: what a re-collected record is compared with (补充材料 → a new version)."""
    return session.scalars(
        select(MatterRecord)
        .where(MatterRecord.source == source, MatterRecord.project_id == project_id)
        .order_by(MatterRecord.version.desc())
        .limit(1)
    ).first()


def latest_versions(session: Session, source: str, project_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """`latest_version` for many matters of one source at once, as (project_id, version,
    content_hash, state) rows: the columns triage compares, not whole rows."""
    m = MatterRecord
    newest: dict[str, Row[Any]] = {}
    for row in session.execute(
        select(m.project_id, m.version, m.content_hash, m.state)
        .where(m.source == source, m.project_id.in_(sorted(set(project_ids))))
    ):
        if row.project_id not in newest or row.version > newest[row.project_id].version:
            newest[row.project_id] = row
    return newest


def unfinished(session: Session, source: str | None = None) -> Sequence[MatterRecord]:
    """Matters numbered or transferred but not verified: a crash left them; the next run finishes them."""
    q = select(MatterRecord).where(MatterRecord.state.in_([MatterState.NUMBERED, MatterState.TRANSFERRED]))
    if source:
        q = q.where(MatterRecord.source == source)
    return session.scalars(q.order_by(MatterRecord.id)).all()


def unacknowledged(session: Session, source: str) -> Sequence[MatterRecord]:
    """Verified matters whose 归档回传 has not reached the source yet."""
    return session.scalars(
        select(MatterRecord).where(
            MatterRecord.source == source,
            MatterRecord.state == MatterState.VERIFIED,
            MatterRecord.acknowledged_at.is_(None),
        )
    ).all()


def verified_not_in_batch(
    session: Session, sources: Collection[str] | None = None, *, limit: int | None = None
) -> Sequence[Row[Any]]:
    """Verified matters (of `sources`, all when None) that no DA/T 93 transfer batch lists yet, in
    (全宗, 档号) order, the first `limit` of them: the columns a batch lists, not whole rows (a
    batch of thousands would otherwise hold every matter's record in the session)."""
    m = MatterRecord
    query = (
        select(m.id, m.source, m.fonds, m.archival_code, m.agency, m.title, m.completed_at, m.retention_period,
               m.page_count, m.total_bytes, m.file_count)
        .where(m.batch_id.is_(None), m.state == MatterState.VERIFIED)
        .order_by(m.fonds, m.archival_code, m.id)
        .limit(limit)
    )
    if sources is not None:
        query = query.where(m.source.in_(sorted(sources)))
    return session.execute(query).all()


def unfinished_batches(session: Session) -> list[dict[str, Any]]:
    """DA/T 93 batches begun (their intent logged) but never recorded: a run died while storing
    them. Each is the begun event's payload (batch id, fonds, time, member matter ids) and its seq."""
    begun: dict[str, dict[str, Any]] = {}
    for ev in session.scalars(
        select(Event).where(Event.kind.in_(["transfer-batch-begun", "transfer-batch"])).order_by(Event.seq)
    ):
        batch_id = (ev.payload or {}).get("batch_id")
        if ev.kind == "transfer-batch-begun":
            begun[batch_id] = {**ev.payload, "begun_seq": ev.seq}
        else:
            begun.pop(batch_id, None)
    return list(begun.values())


def event(session: Session, seq: int) -> Event:
    """One event by its seq; LookupError when the ledger lacks it (an unfinished batch's begun event)."""
    ev = session.get(Event, seq)
    if ev is None:
        raise LookupError(f"event {seq} is not in the ledger")
    return ev


def stored_by_run(session: Session, run_id: str) -> tuple[int, int]:
    """(packages, bytes) a run stored and verified: what its summary says it stored, even when the
    run failed later and a source's own counts were lost with it."""
    packages, total = session.execute(
        select(func.count(), func.coalesce(func.sum(MatterRecord.total_bytes), 0)).where(
            MatterRecord.run_id == run_id, MatterRecord.state == MatterState.VERIFIED
        )
    ).one()
    return int(packages), int(total)


def stored_by_source(session: Session, run_id: str) -> dict[str, int]:
    """Packages a run stored and verified, per source: a failed source's true count."""
    rows = session.execute(
        select(MatterRecord.source, func.count()).where(
            MatterRecord.run_id == run_id, MatterRecord.state == MatterState.VERIFIED
        ).group_by(MatterRecord.source)
    ).all()
    return {source: int(n) for source, n in rows}


def held_by_source(session: Session) -> dict[str, int]:
    """Open quarantine entries per source: what is held back now, whichever night put it there."""
    rows = session.execute(
        select(QuarantineEntry.source, func.count()).where(QuarantineEntry.resolved_at.is_(None))
        .group_by(QuarantineEntry.source)
    ).all()
    return {source: int(n) for source, n in rows}


def open_quarantine(session: Session, source: str, project_id: str) -> QuarantineEntry | None:
    """The matter's unresolved quarantine entry, if any (there is never more than one)."""
    return session.scalars(
        select(QuarantineEntry)
        .where(
            QuarantineEntry.source == source,
            QuarantineEntry.project_id == project_id,
            QuarantineEntry.resolved_at.is_(None),
        )
        .order_by(QuarantineEntry.id.desc())
        .limit(1)
    ).first()


def open_quarantines(session: Session, source: str, project_ids: Sequence[str]) -> dict[str, Row[Any]]:
    """`open_quarantine` for many matters of one source at once, as (project_id, id, content_hash) rows."""
    q = QuarantineEntry
    entries: dict[str, Row[Any]] = {}
    for row in session.execute(
        select(q.project_id, q.id, q.content_hash)
        .where(q.source == source, q.project_id.in_(sorted(set(project_ids))), q.resolved_at.is_(None))
    ):
        if row.project_id not in entries or row.id > entries[row.project_id].id:
            entries[row.project_id] = row
    return entries


def open_quarantine_entries(session: Session, entry_ids: Sequence[int] | None = None) -> Sequence[QuarantineEntry]:
    """Unresolved entries, oldest first: all of them, or those of `entry_ids` that are still open."""
    q = select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None))
    if entry_ids:
        q = q.where(QuarantineEntry.id.in_(list(entry_ids)))
    return session.scalars(q.order_by(QuarantineEntry.id)).all()


def retention_versions(session: Session) -> Sequence[RetentionVersion]:
    """Every imported retention-table version, in import order."""
    return session.scalars(select(RetentionVersion).order_by(RetentionVersion.id)).all()


def retention_version_by_hash(session: Session, content_hash: str) -> RetentionVersion | None:
    return session.scalars(select(RetentionVersion).where(RetentionVersion.content_hash == content_hash)).first()


def retention_version_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RetentionVersion)) or 0


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
