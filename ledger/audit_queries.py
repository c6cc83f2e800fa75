"""The questions the archive bureau's audit asks the ledger (`guidang audit log|fixity|register`).

Beside ledger/queries.py and in its habit (functions take a session, return rows or plain values),
kept apart because they are many and only the audit commands ask them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState, Run
from schemas.layout import transfer_key

# ---------------------------------------------------------------- the event log


@dataclass(frozen=True, slots=True)
class LogFilter:
    """`guidang audit log`'s filters; None: any. Matter filters (agency…) match events of a matter
    whose row has them, by (source, 办件编号)."""

    agency: str | None = None  # 实施机构
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    matter_type: str | None = None  # 事项类型
    service_code: str | None = None  # 事项编码
    archival_code: str | None = None  # 档号
    project_id: str | None = None  # 办件编号
    run_id: str | None = None
    kinds: tuple[str, ...] = ()


def _filtered(f: LogFilter) -> Select[Any]:
    q = select(Event)
    for column, value in ((Event.source, f.source), (Event.project_id, f.project_id),
                          (Event.archival_code, f.archival_code), (Event.run_id, f.run_id)):
        if value is not None:
            q = q.where(column == value)
    if f.since is not None:
        q = q.where(Event.at >= f.since)
    if f.until is not None:
        q = q.where(Event.at < f.until)
    if f.kinds:
        q = q.where(Event.kind.in_(list(f.kinds)))
    matter_filters = [
        column == value
        for column, value in ((MatterRecord.agency, f.agency), (MatterRecord.matter_type, f.matter_type),
                              (MatterRecord.service_code, f.service_code))
        if value is not None
    ]
    if matter_filters:
        matching = select(MatterRecord.id).where(
            MatterRecord.source == Event.source, MatterRecord.project_id == Event.project_id, *matter_filters
        )
        q = q.where(matching.exists())
    return q


def event_log(session: Session, f: LogFilter, *, offset: int = 0, limit: int = 50) -> tuple[int, Sequence[Event]]:
    """(how many events match, one page of them in seq order)."""
    q = _filtered(f)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    page = session.scalars(q.order_by(Event.seq).offset(offset).limit(limit)).all()
    return int(total), page


def event_kinds(session: Session) -> list[str]:
    return list(session.scalars(select(Event.kind).distinct().order_by(Event.kind)))


# ---------------------------------------------------------------- fixity


def verified_in_chunks(session: Session, chunk: int = 500) -> Iterator[Sequence[MatterRecord]]:
    """Every verified matter row, by id, a chunk at a time (detached, so the session stays small)."""
    last = 0
    while True:
        rows = session.scalars(
            select(MatterRecord)
            .where(MatterRecord.state == MatterState.VERIFIED, MatterRecord.id > last)
            .order_by(MatterRecord.id).limit(chunk)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        session.expunge_all()
        yield rows


def verified_listings(session: Session, archival_codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """{档号: payload of its last `verified` event} (the files with SM3, SHA-256 and size; the marker)."""
    out: dict[str, dict[str, Any]] = {}
    if not archival_codes:
        return out
    for ev in session.scalars(
        select(Event).where(Event.kind == str(MatterState.VERIFIED), Event.archival_code.in_(list(archival_codes)))
        .order_by(Event.seq)
    ):
        out[ev.archival_code or ""] = ev.payload or {}
    return out


def archived_by_codes(session: Session, archival_codes: Sequence[str]) -> Sequence[MatterRecord]:
    if not archival_codes:
        return []
    return session.scalars(select(MatterRecord).where(MatterRecord.archival_code.in_(list(archival_codes)))).all()


def archived_by_package(session: Session, package_key: str) -> MatterRecord | None:
    return session.scalars(select(MatterRecord).where(MatterRecord.package_key == package_key)).first()


def batch_payloads(session: Session) -> list[dict[str, Any]]:
    """The `transfer-batch` event of every stored DA/T 93 batch (its files and, where recorded, their digests)."""
    out: dict[str, dict[str, Any]] = {}
    for ev in session.scalars(select(Event).where(Event.kind == "transfer-batch").order_by(Event.seq)):
        payload = ev.payload or {}
        if payload.get("batch_id"):
            out[payload["batch_id"]] = payload
    return list(out.values())


def in_progress_prefixes(session: Session) -> list[str]:
    """Where a night may be writing now: packages of numbered / transferred matters, begun batches."""
    keys = list(session.scalars(
        select(MatterRecord.package_key).where(
            MatterRecord.state.in_([MatterState.NUMBERED, MatterState.TRANSFERRED]),
            MatterRecord.package_key.is_not(None),
        )
    ))
    begun: dict[str, bool] = {}
    for ev in session.scalars(
        select(Event).where(Event.kind.in_(["transfer-batch-begun", "transfer-batch"])).order_by(Event.seq)
    ):
        batch_id = (ev.payload or {}).get("batch_id")
        if batch_id:
            begun[batch_id] = ev.kind == "transfer-batch-begun"
    return [k for k in keys if k] + [transfer_key(b) for b, open_ in begun.items() if open_]


# ---------------------------------------------------------------- registers


def batch_members(session: Session, batch_id: str) -> Sequence[MatterRecord]:
    """The matters a DA/T 93 batch lists, in 档号 order."""
    return session.scalars(
        select(MatterRecord).where(MatterRecord.batch_id == batch_id).order_by(MatterRecord.archival_code)
    ).all()


def batch_event(session: Session, batch_id: str, kind: str = "transfer-batch") -> Event | None:
    """The batch's `transfer-batch` (or `transfer-batch-begun`) event, the last if logged twice."""
    found = None
    for ev in session.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq)):
        if (ev.payload or {}).get("batch_id") == batch_id:
            found = ev
    return found


def all_runs(session: Session) -> Sequence[Run]:
    """Every run, oldest first (one row a night: small)."""
    return session.scalars(select(Run).order_by(Run.started_at)).all()


def recent_runs(session: Session, *, status: str | None = None, limit: int | None = None) -> Sequence[Run]:
    """Runs newest first, of one status (running, completed, failed) when given, at most `limit`."""
    stmt = select(Run).order_by(Run.started_at.desc(), Run.id.desc())
    if status is not None:
        stmt = stmt.where(Run.status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()


def verified_by_runs(session: Session, run_ids: Sequence[str]) -> Sequence[MatterRecord]:
    """Matters whose last state change (verified) was made by one of these runs, in 档号 order."""
    if not run_ids:
        return []
    return session.scalars(
        select(MatterRecord)
        .where(MatterRecord.state == MatterState.VERIFIED, MatterRecord.run_id.in_(list(run_ids)))
        .order_by(MatterRecord.archival_code)
    ).all()


def archived_matter_loose(session: Session, typed: str) -> list[MatterRecord]:
    """Verified-or-not matters whose 档号 equals `typed` once every separator (ASCII hyphen, `·`,
    full-width hyphen, dash, dot) is read as one: a 档号 typed with hyphens for its `·`."""
    wanted = normalise_code(typed)
    column = MatterRecord.archival_code
    for sep in SEPARATORS:
        column = func.replace(column, sep, "-")
    return list(session.scalars(
        select(MatterRecord).where(column == wanted).order_by(MatterRecord.archival_code).limit(5)
    ))


SEPARATORS = ("·", "－", "—", "–", "‧", "・", ".")


def normalise_code(code: str) -> str:
    for sep in SEPARATORS:
        code = code.replace(sep, "-")
    return code.strip()
