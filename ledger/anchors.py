"""Checkpoints: the chain head written down outside the ledger, and the check of the ledger against them.

Whoever can write the ledger's database can delete its last events and move `event_chain_head`
back, or recompute the whole chain after an edit with the project's own hash function: the chain
then verifies. A checkpoint (event seq, that event's hash, time, run) kept where the database's
writer cannot reach (the archive repository under `checkpoints/`, Object-Locked where the store has
Object Lock, and the DA/T 93 batch's 说明文件 and 登记表) turns both into a contradiction: the event a
checkpoint names is gone (A-CHECKPOINT-AHEAD) or no longer has that hash (A-CHECKPOINT-CONTRADICTED).

A checkpoint is itself a `checkpoint` event whose own seq and hash the checkpoint document holds, so
the anchor covers everything up to and including its event; its document is a pure function of the
event, which lets a night write the documents an earlier night could not (store down) byte-identical.
Edits after the newest checkpoint cannot be caught by it: that is what the next checkpoint is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.chain import append_event
from ledger.models import Event
from schemas.anchor import Checkpoint, checkpoint_key
from schemas.findings import Finding

CHECKPOINT_KIND = "checkpoint"
STORED_KIND = "checkpoint-stored"  # its document reached the repository: never to be written again


def note_stored(session: Session, present: set[str], run_id: str | None) -> None:
    """Append a `checkpoint-stored` event for each checkpoint the ledger records, the repository
    holds (`present`) and no event notes yet. A night writes only a document the ledger never saw
    stored: one that was stored and is gone is evidence removed, never to be written again. Noted
    in a night's closing transaction, before its own checkpoint, so the checkpoint covers them."""
    noted = stored_documents(session)
    for cp in checkpoint_events(session):
        if cp.where in present and cp.where not in noted:
            append_event(session, STORED_KIND, run_id=run_id, payload={"where": cp.where})


def stored_documents(session: Session) -> set[str]:
    """The checkpoint documents the ledger saw stored."""
    rows = session.scalars(select(Event.payload).where(Event.kind == STORED_KIND)).all()
    return {str(p.get("where")) for p in rows if isinstance(p, dict)}


def record_checkpoint(session: Session, run_id: str | None, reason: str) -> Checkpoint:
    """Append the checkpoint event; its document is to be stored once the transaction committed."""
    ev = append_event(session, CHECKPOINT_KIND, run_id=run_id, payload={"reason": reason})
    return checkpoint_of(ev)


def checkpoint_of(ev: Event) -> Checkpoint:
    at = ev.at.astimezone(UTC).isoformat(timespec="microseconds")
    return Checkpoint(ev.seq, ev.hash, at, ev.run_id, where=checkpoint_key(ev.seq, ev.run_id))


def checkpoint_events(session: Session) -> list[Checkpoint]:
    """Every checkpoint the ledger says it wrote, oldest first."""
    rows = session.scalars(select(Event).where(Event.kind == CHECKPOINT_KIND).order_by(Event.seq)).all()
    return [checkpoint_of(ev) for ev in rows]


def check_checkpoints(session: Session, checkpoints: Sequence[Checkpoint]) -> list[Finding]:
    """The ledger against each anchor: the event it names exists and has the hash it recorded."""
    findings: list[Finding] = []
    last_seq = session.scalar(select(func.max(Event.seq))) or 0
    for cp in sorted(checkpoints, key=lambda c: (c.seq, c.where)):
        details: dict[str, Any] = {"checkpoint": asdict(cp)}
        ev = session.get(Event, cp.seq)
        if ev is None:
            why = (f"the ledger's events end at {last_seq}: events after it were removed (the chain was truncated)"
                   if cp.seq > last_seq else f"event {cp.seq} is missing from the ledger")
            findings.append(Finding("A-CHECKPOINT-AHEAD", cp.label(), f"anchors event {cp.seq}, but {why}",
                                    details=details))
        elif ev.hash != cp.hash:
            findings.append(Finding(
                "A-CHECKPOINT-CONTRADICTED", cp.label(),
                f"recorded hash {cp.hash[:16]}… for event {cp.seq}; the ledger now has {ev.hash[:16]}…: "
                "the chain up to that event was rewritten (recomputed after an edit) or forked",
                details=details | {"ledger_hash": ev.hash},
            ))
    return findings


def missing_documents(recorded: Sequence[Checkpoint], stored_keys: set[str]) -> list[Finding]:
    """Checkpoint events whose document is not in the repository: an anchor deleted (or never
    written, when the store failed at the end of its night; the next night writes it)."""
    return [
        Finding("A-CHECKPOINT-MISSING", cp.where,
                f"the ledger's event {cp.seq} says this checkpoint was written; the repository does not hold it",
                details={"checkpoint": asdict(cp)})
        for cp in recorded
        if cp.where not in stored_keys
    ]
