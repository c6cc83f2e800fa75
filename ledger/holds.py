"""The quarantine's writes: a matter held with its reasons, another attempt counted, an entry resolved.

Like ledger/store.py, each function takes a Session and leaves the commit to its caller, and each
write appends its event to the hash chain (ledger/chain.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ledger import queries
from ledger.chain import append_event, utcnow
from ledger.models import QuarantineEntry
from schemas.findings import Finding


@dataclass(frozen=True, slots=True)
class Hold:
    """What the quarantine keeps of one record so that it can be retried: which matter, the digest
    that tells "unchanged since" from "changed at the source", and the record itself."""

    source: str
    project_id: str
    content_hash: str | None
    source_updated_at: datetime | None
    record: dict[str, Any]


def quarantine(session: Session, hold: Hold, findings: list[Finding], *, run_id: str | None) -> QuarantineEntry:
    """Quarantine a matter, or count another attempt on its open entry (never two open entries)."""
    codes = sorted({f.code for f in findings})
    dicts = [f.to_dict() for f in findings]
    facts = {**asdict(hold), "codes": codes, "findings": dicts, "run_id": run_id}
    entry = queries.open_quarantine(session, hold.source, hold.project_id)
    if entry is not None:
        entry.attempts += 1
        for name, value in facts.items():
            setattr(entry, name, value)
    else:
        entry = QuarantineEntry(**facts, created_at=utcnow(), attempts=1, resolved_at=None, resolution=None)
        session.add(entry)
    session.flush()
    append_event(
        session,
        "quarantined",
        run_id=run_id,
        source=hold.source,
        project_id=hold.project_id,
        payload={"codes": codes, "attempt": entry.attempts, "content_hash": hold.content_hash},
    )
    return entry


def resolve_quarantine(session: Session, entry_id: int, resolution: str, *, run_id: str | None) -> None:
    entry = session.get(QuarantineEntry, entry_id, with_for_update=True)
    if entry is None or entry.resolved_at is not None:
        return
    entry.resolved_at, entry.resolution = utcnow(), resolution
    append_event(
        session,
        "quarantine-resolved",
        run_id=run_id,
        source=entry.source,
        project_id=entry.project_id,
        payload={"entry": entry_id, "resolution": resolution},
    )
