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
from schemas.findings import Finding, Severity

CHECKPOINT_KIND = "checkpoint"
STORED_KIND = "checkpoint-stored"  # its document reached the repository: never to be written again
ABSENT_KIND = "checkpoint-absent"  # a later night found its document not stored (written late, or gone)


def note_stored(session: Session, present: set[str] | None, run_id: str | None) -> None:
    """Append a `checkpoint-stored` event for each checkpoint the ledger records, the repository
    holds (`present`) and no event notes yet. A night writes only a document the ledger never saw
    stored: one that was stored and is gone is evidence removed, never to be written again. Noted
    in a night's closing transaction, before its own checkpoint, so the checkpoint covers them.

    A checkpoint neither stored nor noted gets a `checkpoint-absent` event instead: its document,
    if this night writes it, is written late, from the ledger as it is now, and a ledger forged
    after its anchor was erased for good (every version, where Object Lock lets an administrator)
    would be anchored by it. So `audit verify` names every late anchor (A-CHECKPOINT-LATE); hiding
    that event breaks this night's own checkpoint. `present` None: the store could not say (noted later)."""
    if present is None:
        return
    noted = stored_documents(session)
    absent = documents_of(session, ABSENT_KIND)
    for cp in checkpoint_events(session):
        if cp.where in present and cp.where not in noted:
            append_event(session, STORED_KIND, run_id=run_id, payload={"where": cp.where})
        elif cp.where not in present and cp.where not in noted and cp.where not in absent:
            append_event(session, ABSENT_KIND, run_id=run_id, payload={"where": cp.where})


def stored_documents(session: Session) -> set[str]:
    """The checkpoint documents the ledger saw stored."""
    return documents_of(session, STORED_KIND)


def documents_of(session: Session, kind: str) -> set[str]:
    """The checkpoint documents events of `kind` name."""
    rows = session.scalars(select(Event.payload).where(Event.kind == kind)).all()
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


def late_documents(absent: set[str], stored_keys: set[str]) -> list[Finding]:
    """Checkpoint documents a later night found missing and that are stored now: written late from
    the ledger of that night (the store failed at their own night, or they were erased since)."""
    return [
        Finding("A-CHECKPOINT-LATE", where,
                "a later night found this checkpoint not stored and wrote it from the ledger as it then was: "
                "it anchors that ledger, not the one of its own night (a store that failed at its night, or "
                "the document erased since; an incident unless that night's store failure is known)",
                severity=Severity.WARNING)
        for where in sorted(absent & stored_keys)
    ]
