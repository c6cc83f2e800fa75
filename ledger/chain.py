"""The transfer ledger's event log: append-only, each event carrying the hash of the one before.

Every state change the archive relies on is an event here; the chain head (`event_chain_head`) is
locked FOR UPDATE by every writer, which on PostgreSQL serialises writers across hosts, so two
processes can never fork the chain. `verify_chain` is what `guidang audit verify` runs: it
recomputes each event's hash with the one canonical-JSON digest and reports gaps, broken links,
altered events and a head that does not match the log's end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.models import ChainHead, Event
from schemas.digest import json_digest
from schemas.errors import InvariantBroken
from schemas.findings import Finding

GENESIS_HASH = "0" * 64


def utcnow() -> datetime:
    return datetime.now(UTC)


def _event_body(ev: Event) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "at": ev.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "kind": ev.kind,
        "run_id": ev.run_id,
        "source": ev.source,
        "project_id": ev.project_id,
        "archival_code": ev.archival_code,
        "payload": ev.payload,
    }


def append_event(
    session: Session,
    kind: str,
    *,
    run_id: str | None = None,
    source: str | None = None,
    project_id: str | None = None,
    archival_code: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    head = _locked_head(session)
    ev = Event(
        seq=head.seq + 1,
        at=utcnow(),
        kind=kind,
        run_id=run_id,
        source=source,
        project_id=project_id,
        archival_code=archival_code,
        payload=json.loads(json.dumps(payload or {}, ensure_ascii=False, default=str)),
        prev_hash=head.hash,
        hash="",
    )
    ev.hash = json_digest(_event_body(ev), prefix=ev.prev_hash)
    session.add(ev)
    head.seq, head.hash = ev.seq, ev.hash
    return ev


_HEAD = "guidang.chain_head"  # session.info: the head row this transaction has locked


def lock_chain(session: Session) -> None:
    """Take the event chain's lock now, for a transaction that reads what it is about to number."""
    _locked_head(session)


def _locked_head(session: Session) -> ChainHead:
    """The chain head, locked FOR UPDATE once per transaction: the events after the first reuse the
    locked row instead of locking it again, which cost a SELECT and a flush per event (a chunk of
    50 matters writes some 150 events). The row is forgotten when any transaction of the session,
    a savepoint included, ends: a rolled-back savepoint may have released a lock taken inside it."""
    head = session.info.get(_HEAD)
    if head is None:
        head = session.get(ChainHead, 1, with_for_update=True)
        if head is None:
            head = _first_head(session)
        session.info[_HEAD] = head
    return head


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, _transaction: Any) -> None:
    session.info.pop(_HEAD, None)


def _first_head(session: Session) -> ChainHead:
    """The head row of an empty ledger. Two processes writing their first events at once both find
    none and both insert it: the loser's insert fails on the primary key (after waiting for the
    winner's commit), its savepoint is rolled back, and it locks the winner's row like any writer."""
    try:
        with session.begin_nested():
            session.add(ChainHead(id=1, seq=0, hash=GENESIS_HASH))
    except IntegrityError:
        pass
    head = session.get(ChainHead, 1, with_for_update=True, populate_existing=True)
    if head is None:
        raise InvariantBroken("the chain head row is missing right after it was inserted")
    return head


def verify_chain(
    session: Session, *, batch: int = 5000, on_event: Callable[[Event], None] | None = None
) -> tuple[int, list[Finding]]:
    """Recompute every event hash in order; a changed, inserted or deleted row breaks the chain.

    Returns (events checked, findings). Streams in batches so millions of events fit in memory;
    `on_event` sees each event as it passes (the row check collects its anchors in the same walk).
    """
    findings: list[Finding] = []
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
    last_seq = 0
    while True:
        rows = session.scalars(select(Event).where(Event.seq > last_seq).order_by(Event.seq).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            count += 1
            where = f"event {ev.seq}"
            if ev.seq != expected_seq:
                findings.append(
                    Finding(
                        "A-EVENT-GAP",
                        where,
                        f"expected event {expected_seq}, found {ev.seq}: {ev.seq - expected_seq} event(s) missing",
                    )
                )
            if ev.prev_hash != prev_hash:
                findings.append(Finding("A-EVENT-LINK", where, "prev_hash does not match the previous event's hash"))
            recomputed = json_digest(_event_body(ev), prefix=ev.prev_hash)
            if recomputed != ev.hash:
                findings.append(
                    Finding(
                        "A-EVENT-ALTERED",
                        where,
                        f"content changed after it was written ({ev.kind}, {ev.archival_code or ''})",
                    )
                )
            if on_event is not None:
                on_event(ev)
            prev_hash, expected_seq, last_seq = ev.hash, ev.seq + 1, ev.seq
        session.expunge_all()
    head = session.get(ChainHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != last_seq or head_hash != prev_hash:
        findings.append(
            Finding(
                "A-EVENT-TRUNCATED",
                "event chain head",
                f"the chain head says event {head_seq} ({head_hash[:12]}…) but the log ends at "
                f"event {last_seq} ({prev_hash[:12]}…): events were removed or the head altered",
            )
        )
    return count, findings


def chain_head(session: Session) -> tuple[int, str]:
    head = session.get(ChainHead, 1)
    return (head.seq, head.hash) if head else (0, GENESIS_HASH)
