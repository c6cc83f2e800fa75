"""The ledger's steps of a destruction (销毁): begun, blocked, done; each an event in the chain.

A destruction is recorded twice per record on purpose: `destruction-begun` before the first object
is deleted (so a crash half-way leaves a record the next `destroy` finishes, and the fixity check
knows its absent content is being destroyed, not lost), and the row's `destroyed` matter event
after the last, carrying the tombstone: the record's facts (the row, as every matter event does)
and the digests of what was deleted and of what is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import store
from ledger.chain import append_event, utcnow
from ledger.disposition_rules import check_destroyable, items, refused, review
from ledger.models import DispositionItem, DispositionReview, Event, MatterRecord, MatterState


def to_destroy(session: Session, review_id: int) -> list[tuple[DispositionItem, MatterRecord]]:
    """The approved review's records decided for destruction and not destroyed yet."""
    rv = review(session, review_id)
    if rv.status not in ("approved", "completed"):
        raise refused("D-REVIEW-STATE", f"appraisal {review_id}", f"is {rv.status}: approve it first")
    out = []
    for i in items(session, review_id):
        if i.decision == "destroy" and i.outcome != "destroyed":
            rec = session.get(MatterRecord, i.matter_id)
            if rec is not None:
                out.append((i, rec))
    return out


def begin(session: Session, item_id: int, *, user: str) -> None:
    """Record that the record's deletion starts; the rules are checked once more (a hold may have
    been placed since the approval)."""
    item = session.get(DispositionItem, item_id, with_for_update=True)
    rec = session.get(MatterRecord, item.matter_id) if item else None
    if item is None or rec is None:
        return
    check_destroyable(session, rec)
    if item.outcome != "destroying":
        item.outcome, item.outcome_note = "destroying", None
        append_event(session, "destruction-begun", source=rec.source, project_id=rec.project_id,
                     archival_code=rec.archival_code, payload={"review": item.review_id, "by": user})


def block(session: Session, item_id: int, code: str, note: str, *, user: str) -> None:
    """The store (or a hold) refused; nothing of the record was deleted, a later `destroy` retries."""
    item = session.get(DispositionItem, item_id, with_for_update=True)
    if item is None:
        return
    item.outcome, item.outcome_note = "blocked", f"{code}: {note}"[:255]
    append_event(session, "destruction-blocked", archival_code=item.archival_code,
                 payload={"review": item.review_id, "code": code, "note": note, "by": user})


def finish(session: Session, item_id: int, tombstone: dict[str, Any], *, user: str) -> None:
    """The record is destroyed: its row says so (state destroyed), its event carries the tombstone."""
    item = session.get(DispositionItem, item_id, with_for_update=True)
    if item is None or item.outcome == "destroyed":
        return
    rv = session.get(DispositionReview, item.review_id)
    rec = store.locked_matter(session, item.matter_id)
    store.mark_state(session, rec, MatterState.DESTROYED, run_id=None, payload={
        "review": item.review_id, "by": user, "approved_by": rv.approved_by if rv else None,
        "decided_by": item.decided_by, "reason": item.reason, "tombstone": tombstone})
    item.outcome, item.outcome_note = "destroyed", None
    if rv is not None and not any(i.decision == "destroy" and i.outcome != "destroyed"
                                  for i in items(session, rv.id)):
        rv.status, rv.completed_at = "completed", utcnow()
        append_event(session, "disposition-completed", payload={"review": rv.id, "by": user})


def tombstones(session: Session) -> dict[str, dict[str, Any]]:
    """{档号: tombstone of its `destroyed` event} for every destroyed record."""
    out: dict[str, dict[str, Any]] = {}
    for ev in session.scalars(select(Event).where(Event.kind == str(MatterState.DESTROYED)).order_by(Event.seq)):
        out[ev.archival_code or ""] = (ev.payload or {}).get("tombstone") or {}
    return out


def destroying(session: Session) -> Sequence[str]:
    """档号 of records whose destruction has begun and not ended (a crash, or running now)."""
    return list(session.scalars(select(DispositionItem.archival_code).where(DispositionItem.outcome == "destroying")))


def destroyed_in_batches(session: Session, review_id: int) -> dict[str, list[dict[str, Any]]]:
    """{batch id: the review's destroyed records of that batch (档号, 题名, when)}."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i in items(session, review_id):
        rec = session.get(MatterRecord, i.matter_id) if i.outcome == "destroyed" else None
        if rec is not None and rec.batch_id:
            out.setdefault(rec.batch_id, []).append({"archival_code": rec.archival_code, "title": rec.title,
                                                     "reason": i.reason})
    return out


def batch_notes(session: Session) -> list[dict[str, Any]]:
    """Every `batch-destruction-noted` event's payload: the 销毁记录 stored beside a batch's 目录."""
    return [ev.payload or {} for ev in session.scalars(
        select(Event).where(Event.kind == "batch-destruction-noted").order_by(Event.seq))]


def note_batch(session: Session, payload: dict[str, Any]) -> None:
    if not any(p.get("key") == payload["key"] for p in batch_notes(session)):
        append_event(session, "batch-destruction-noted", payload=payload)
